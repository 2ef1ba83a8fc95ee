// Per-pixel part of surface shading: puddles (PUDDLES), night lights (NIGHT), dense fog (FOG; light fog and
// wet reflections are per vertex). Features are compile-time variants: llvmpipe pays for both sides of a
// branch.
in vec3 v_world;
in vec3 v_lit;
in vec3 v_puddle;
in vec3 v_albedo;
in vec3 v_nrm;
in float v_fogh;
in float v_fog;
in float v_depth;
flat in float v_sem;
flat in float v_puddly;
layout(location = 0) out vec4 f_color;   // stored B, G, R, A: CARLA's byte order
#ifdef AUX
layout(location = 1) out vec2 f_aux;     // planar depth (m), Occ3D class id
#endif

void main() {
    vec3 c = v_lit;
#ifdef FOG
    float dist = length(v_world - u_cam_pos);
#endif
#ifdef NIGHT
    vec3 n = normalize(v_nrm);
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
#ifdef PUDDLES
    float th = 1.0 - 0.55 * wet_par.y;
    float puddle = smoothstep(th, th + 0.04, texture(u_noise, v_world.xy * (1.0 / 48.0)).r) * v_puddly;
    c = mix(c, v_puddle, puddle);
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
