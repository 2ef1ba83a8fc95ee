// Sky: per-vertex gradient + per-pixel sun disk and procedural clouds (cloudiness), then haze/fog.
in vec3 v_ray;
in vec3 v_sky;
in float v_fog;
layout(location = 0) out vec4 f_color;
#ifdef AUX
layout(location = 1) out vec2 f_aux;
#endif
void main() {
    vec3 c = v_sky;
    if (sun_glow.w > 0.0 || wet_par.z > 0.0) {
        vec3 d = normalize(v_ray);
        c += vec3(sun_glow.w * 6.0) * smoothstep(0.9994, 0.9997, dot(d, sun_dir.xyz));
        if (wet_par.z > 0.0 && d.z > 0.0) {
            vec2 uv = d.xy / (d.z + 0.08) * 0.12 + vec2(wet_par.w, 0.0);
            float m = texture(u_noise, uv).r;
            float th = 1.05 - 1.1 * wet_par.z;
            float k = smoothstep(th, th + 0.25, m) * smoothstep(0.0, 0.12, d.z);
            c = mix(c, cloud_col.rgb * (0.8 + 0.35 * m), k);
        }
    }
    c = mix(mix(haze_col.rgb, fog_col.rgb, 0.5), c, v_fog);
    f_color = vec4(clamp(c.bgr, 0.0, 1.0), 1.0);
#ifdef AUX
    f_aux = vec2(FAR_DEPTH, 17.0);
#endif
}
