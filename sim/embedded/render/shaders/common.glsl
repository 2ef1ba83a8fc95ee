// Frame-constant inputs shared by every program (std140, all vec4; filled by Renderer._frame_ubo).
layout(std140) uniform Frame {
    vec4 sun_dir;      // xyz towards the sun
    vec4 sun_col;
    vec4 amb_sky;
    vec4 amb_ground;
    vec4 zenith;
    vec4 horizon;
    vec4 sun_glow;     // rgb halo, w = disk brightness
    vec4 fog_col;      // rgb: haze and fog blended, w = fog extinction per metre at ground level
    vec4 haze_col;     // rgb (sky only), w = haze extinction per metre
    vec4 fog_par;      // x = fog start (m), y = height falloff (1/m), z = ground z, w = lights on 0..1
    vec4 wet_par;      // x = wetness, y = puddles, z = cloudiness, w = cloud drift
    vec4 cloud_col;
    vec4 counts;       // x = point lights, y = spot lights (informative; loops run over all slots)
    vec4 point_col;    // rgb, w = radius (m)
    vec4 spot_col;     // rgb, w = reach (m)
    vec4 point_pos[16];
    vec4 spot_pos[8];
    vec4 spot_dir[8];  // xyz unit, w = cos of the cone half-angle
};

uniform sampler2D u_noise;  // tileable multi-octave value noise in [0, 1], REPEAT-wrapped
uniform vec3 u_cam_pos;

const float FAR_DEPTH = 1000.0;

uint hash_u(uint x) {
    x ^= x >> 16; x *= 0x7feb352du;
    x ^= x >> 15; x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

// Clear-sky colour along a unit world direction, sun halo included, disk excluded.
vec3 sky_base(vec3 d) {
    float h = d.z;
    vec3 c = mix(horizon.rgb, zenith.rgb, sqrt(clamp(h, 0.0, 1.0)));
    if (h < 0.0) c = mix(horizon.rgb, amb_ground.rgb * 0.8, clamp(-h * 4.0, 0.0, 1.0));
    float cs = max(dot(d, sun_dir.xyz), 0.0);
    float c2 = cs * cs, c4 = c2 * c2, c8 = c4 * c4, c32 = c8 * c8 * c8 * c8 * c2 * c2;
    return c + sun_glow.rgb * (0.25 * c4 * c2 + 0.6 * c32 * c32 * c32);
}

// Mean fog density (relative to ground level) along a ray from the camera to height z: the integral of
// exp(-falloff * h) between both heights over their difference.
float fog_height_factor(float z) {
    float a = fog_par.y;
    float h0 = max(u_cam_pos.z - fog_par.z, 0.0);
    float h1 = max(z - fog_par.z, 0.0);
    float dh = a * (h1 - h0);
    return abs(dh) > 1e-4 ? (exp(-a * h0) - exp(-a * h1)) / dh : exp(-a * h0);
}

// Fraction of the original colour left after haze + fog over `dist` metres (fog from fog_par.x on).
float fog_transmittance(float dist, float height_factor) {
    return exp(-haze_col.w * dist - fog_col.w * max(dist - fog_par.x, 0.0) * height_factor);
}
