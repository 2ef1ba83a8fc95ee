// Per-pixel part of surface shading: wet/glossy reflections and puddles (GLOSS), night lights (NIGHT), dense
// fog (FOG; light fog is per vertex). Features are compile-time variants: llvmpipe pays for both sides of a
// branch.
in vec3 v_world;
in vec3 v_lit;
in vec3 v_albedo;
in vec3 v_nrm;
in float v_fogh;
in float v_fog;
in float v_depth;
flat in float v_sem;
flat in float v_gloss;
layout(location = 0) out vec4 f_color;   // stored B, G, R, A: CARLA's byte order
#ifdef AUX
layout(location = 1) out vec2 f_aux;     // planar depth (m), Occ3D class id
#endif

void main() {
    vec3 c = v_lit;
#if defined(NIGHT) || defined(GLOSS) || defined(FOG)
    vec3 ray = v_world - u_cam_pos;
    float dist = length(ray);
#endif
#if defined(NIGHT) || defined(GLOSS)
    vec3 dir = ray / max(dist, 1e-6);
    vec3 V = -dir;
    vec3 n = normalize(v_nrm);
#endif
#ifdef NIGHT
    // constant trip counts (llvmpipe unrolls them); unused slots hold lights far away
    vec3 light = vec3(0.0);
    for (int i = 0; i < N_POINT; ++i) {
        vec3 L = point_pos[i].xyz - v_world;
        float d2 = dot(L, L);
        float d = sqrt(d2);
        float r2 = point_col.w * point_col.w;
        light += point_col.rgb * (r2 / (r2 + d2) * clamp(1.0 - d / 45.0, 0.0, 1.0) * max(dot(n, L / d), 0.0));
    }
    for (int i = 0; i < N_SPOT; ++i) {
        vec3 L = spot_pos[i].xyz - v_world;
        float d2 = dot(L, L);
        float d = sqrt(d2);
        L /= d;
        float cone = smoothstep(spot_dir[i].w, spot_dir[i].w + 0.06, dot(-L, spot_dir[i].xyz));
        // sqrt(n.L): a headlight's beam is brightest near the horizon, which offsets the grazing angle on
        // the road far ahead
        light += spot_col.rgb * (cone * 144.0 / (144.0 + d2) * clamp(1.0 - d / spot_col.w, 0.0, 1.0)
                                 * sqrt(max(dot(n, L), 0.0)));
    }
    c += v_albedo * light;
#endif
#ifdef GLOSS
    if (v_gloss != 0.0) {  // wet ground (puddles unless a sidewalk: negative gloss) and glass
        float gloss = abs(v_gloss);
        float shine = 40.0;
        if (v_gloss > 0.0 && wet_par.y > 0.0 && v_sem < 12.5) {
            float th = 1.0 - 0.55 * wet_par.y;
            float puddle = smoothstep(th, th + 0.04, texture(u_noise, v_world.xy * (1.0 / 48.0)).r);
            c *= mix(1.0, 0.4, puddle);
            gloss = max(gloss, 0.9 * puddle);
            shine = mix(40.0, 300.0, puddle);
        }
        vec3 R = reflect(dir, n);
        float k = 1.0 - max(dot(n, V), 0.0);
        float k2 = k * k;
        float fres = 0.04 + 0.96 * k2 * k2 * k;
        vec3 spec = sun_col.rgb * 3.0 * pow(max(dot(n, normalize(sun_dir.xyz + V)), 0.0), shine);
#ifdef NIGHT
        for (int i = 0; i < N_POINT; ++i) {  // street lights glinting on the wet road
            vec3 L = normalize(point_pos[i].xyz - v_world);
            spec += point_col.rgb * 0.5 * pow(max(dot(n, normalize(L + V)), 0.0), shine);
        }
#endif
        vec3 sky = mix(horizon.rgb, zenith.rgb, clamp(R.z, 0.0, 1.0));  // cheap sky (no halo) for reflections
        c = mix(c, sky, gloss * fres) + spec * gloss;
    }
#endif
#ifdef FOG
    c = mix(fog_col.rgb, c, fog_transmittance(dist, v_fogh));
#else
    c = mix(fog_col.rgb, c, v_fog);
#endif
    f_color = vec4(clamp(c.bgr, 0.0, 1.0), 1.0);
#ifdef AUX
    f_aux = vec2(v_depth, v_sem);
#endif
}
