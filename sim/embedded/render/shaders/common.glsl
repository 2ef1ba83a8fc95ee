// Frame-constant inputs shared by every program (std140, all vec4; filled by renderer._frame_ubo).
layout(std140) uniform Frame {
    vec4 sun_dir;      // xyz towards the sun
    vec4 sun_col;
    vec4 amb_sky;
    vec4 amb_ground;
    vec4 zenith;
    vec4 horizon;
    vec4 sun_glow;     // rgb halo, w = disk brightness
    vec4 fog_col;      // rgb, w = extinction per metre at ground level
    vec4 haze_col;     // rgb, w = extinction per metre
    vec4 fog_par;      // x = fog start (m), y = height falloff (1/m), z = ground z, w = lights on 0..1
    vec4 wet_par;      // x = wetness, y = puddles, z = cloudiness, w = cloud drift
    vec4 cloud_col;
    vec4 counts;       // x = point lights, y = spot lights
    vec4 point_col;    // rgb, w = radius (m)
    vec4 spot_col;     // rgb, w = reach (m)
    vec4 point_pos[16];
    vec4 spot_pos[8];
    vec4 spot_dir[8];  // xyz unit, w = cos of the cone half-angle
};

const float FAR_DEPTH = 1000.0;

uniform sampler2D u_noise;  // tileable multi-octave value noise in [0, 1], REPEAT-wrapped

uint hash_u(uint x) {
    x ^= x >> 16; x *= 0x7feb352du;
    x ^= x >> 15; x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

float noise2(vec2 p) { return texture(u_noise, p).r; }

// Clear-sky colour along a world direction (no clouds: used for reflections too).
vec3 sky_base(vec3 d) {
    float h = d.z;
    vec3 c = mix(horizon.rgb, zenith.rgb, sqrt(clamp(h, 0.0, 1.0)));
    if (h < 0.0) c = mix(horizon.rgb, amb_ground.rgb * 0.8, clamp(-h * 4.0, 0.0, 1.0));
    float cs = max(dot(d, sun_dir.xyz), 0.0);
    float c2 = cs * cs, c4 = c2 * c2, c8 = c4 * c4, c32 = c8 * c8 * c8 * c8 * c2 * c2;
    c += sun_glow.rgb * (0.25 * c4 * c2 + 0.6 * c32 * c32 * c32);
    c += vec3(sun_glow.w * 6.0) * smoothstep(0.9994, 0.9997, cs);
    return c;
}

// Haze + exponential height fog between the camera and a point `dist` metres along unit ray `dir`.
vec3 apply_fog(vec3 c, vec3 cam, vec3 dir, float dist) {
    c = mix(c, haze_col.rgb, 1.0 - exp(-haze_col.w * dist));
    float fd = max(dist - fog_par.x, 0.0);
    if (fog_col.w > 0.0 && fd > 0.0) {
        float h0 = max(cam.z - fog_par.z, 0.0);
        float h1 = max(cam.z + dir.z * dist - fog_par.z, 0.0);
        float a = fog_par.y;
        float dh = a * (h1 - h0);
        float avg = abs(dh) > 1e-4 ? (exp(-a * h0) - exp(-a * h1)) / dh : exp(-a * h0);
        c = mix(c, fog_col.rgb, 1.0 - exp(-fog_col.w * fd * avg));
    }
    return c;
}
