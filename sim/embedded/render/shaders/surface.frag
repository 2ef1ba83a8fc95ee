// Lit surfaces (static and actors): sun + sky ambient, night lights, wet roads, emissive parts, fog.
uniform vec3 u_cam_pos;
uniform vec3 u_cam_fwd;
in vec3 v_world;
in vec3 v_nrm;
in vec3 v_col;
flat in float v_sem;
flat in float v_part;
flat in float v_state;
layout(location = 0) out vec4 f_color;   // stored B, G, R, A: CARLA's byte order
#ifdef AUX
layout(location = 1) out vec2 f_aux;     // planar depth (m), Occ3D class id
#endif

void main() {
    vec3 ray = v_world - u_cam_pos;
    float dist = length(ray);
    vec3 dir = ray / max(dist, 1e-6);
    vec3 V = -dir;
    vec3 n = normalize(v_nrm);
    if (dot(n, V) < 0.0) n = -n;  // two-sided
    vec3 albedo = v_col;
    vec3 emit = vec3(0.0);
    float gloss = 0.0, shine = 40.0;
    int part = int(floor(v_part + 0.5));
    int sem = int(floor(v_sem + 0.5));
    float lights = fog_par.w;

    if (part == 2) {
        emit = vec3(1.0, 0.97, 0.85) * (0.2 + 1.5 * lights);
    } else if (part == 3) {
        emit = vec3(0.9, 0.05, 0.03) * (0.05 + 0.9 * lights);
    } else if (part >= 4 && part <= 6) {
        vec3 bulb = part == 4 ? vec3(1.0, 0.1, 0.05) : (part == 5 ? vec3(1.0, 0.75, 0.05) : vec3(0.1, 1.0, 0.35));
        if (int(floor(v_state + 0.5)) == part - 4) emit = bulb * 1.3;
        else albedo = bulb * 0.07;
    } else if (part == 7) {
        emit = vec3(1.0, 0.88, 0.65) * (0.05 + 1.6 * lights);
        albedo = vec3(0.3);
    } else if (part == 8) {
        gloss = 0.5; shine = 80.0;
    }

    if (part < 0 && (sem == 11 || sem == 12 || sem == 13)) {  // wet ground: darker, glossy, puddles
        float w = wet_par.x * (sem == 11 ? 1.0 : 0.6);
        float puddle = 0.0;
        if (wet_par.y > 0.0 && sem != 13) {
            float m = noise2(v_world.xy * (1.0 / 48.0));
            float th = 1.0 - 0.55 * wet_par.y;
            puddle = smoothstep(th, th + 0.04, m);
        }
        albedo *= mix(1.0, 0.55, w) * mix(1.0, 0.4, puddle);
        gloss = max(0.45 * w, 0.9 * puddle);
        shine = mix(30.0, 300.0, puddle);
    }

    float hemi = n.z * 0.5 + 0.5;
    vec3 light = mix(amb_ground.rgb, amb_sky.rgb, hemi) + sun_col.rgb * max(dot(n, sun_dir.xyz), 0.0);
    vec3 spec = vec3(0.0);
    if (gloss > 0.0) {
        spec += sun_col.rgb * 3.0 * pow(max(dot(n, normalize(sun_dir.xyz + V)), 0.0), shine);
    }
#ifdef NIGHT
    // constant trip counts: llvmpipe unrolls them; unused slots carry zero-intensity lights far away
    for (int i = 0; i < N_POINT; ++i) {
        vec3 L = point_pos[i].xyz - v_world;
        float d2 = dot(L, L);
        float d = sqrt(d2);
        L /= d;
        float r2 = point_col.w * point_col.w;
        float att = r2 / (r2 + d2) * clamp(1.0 - d / 45.0, 0.0, 1.0);
        light += point_col.rgb * att * max(dot(n, L), 0.0);
        if (gloss > 0.0) spec += point_col.rgb * att * 2.0 * pow(max(dot(n, normalize(L + V)), 0.0), shine);
    }
    for (int i = 0; i < N_SPOT; ++i) {
        vec3 L = spot_pos[i].xyz - v_world;
        float d2 = dot(L, L);
        float d = sqrt(d2);
        L /= d;
        float cone = smoothstep(spot_dir[i].w, spot_dir[i].w + 0.06, dot(-L, spot_dir[i].xyz));
        float att = cone * 36.0 / (36.0 + d2) * clamp(1.0 - d / spot_col.w, 0.0, 1.0);
        light += spot_col.rgb * att * max(dot(n, L), 0.0);
        if (gloss > 0.0) spec += spot_col.rgb * att * pow(max(dot(n, normalize(L + V)), 0.0), shine);
    }
#endif

    vec3 c = albedo * light + emit;
    if (gloss > 0.0) {
        vec3 R = reflect(dir, n);
        float fres = 0.04 + 0.96 * pow(1.0 - max(dot(n, V), 0.0), 5.0);
        c = mix(c, sky_base(R), gloss * fres) + spec * gloss;
    }
    c = apply_fog(c, u_cam_pos, dir, dist);
    f_color = vec4(clamp(c.bgr, 0.0, 1.0), 1.0);
#ifdef AUX
    f_aux = vec2(dot(ray, u_cam_fwd), v_sem);
#endif
}
