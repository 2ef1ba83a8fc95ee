// Sky: gradient, sun, procedural clouds by cloudiness, haze and fog towards the horizon.
uniform vec3 u_cam_pos;
in vec3 v_ray;
layout(location = 0) out vec4 f_color;
#ifdef AUX
layout(location = 1) out vec2 f_aux;
#endif
void main() {
    vec3 d = normalize(v_ray);
    vec3 c = sky_base(d);
    float cover = wet_par.z;
    if (cover > 0.0 && d.z > 0.0) {
        vec2 uv = d.xy / (d.z + 0.08) * 0.12 + vec2(wet_par.w, 0.0);
        float m = noise2(uv);
        float th = 1.05 - 1.1 * cover;
        float k = smoothstep(th, th + 0.25, m) * smoothstep(0.0, 0.12, d.z);
        c = mix(c, cloud_col.rgb * (0.8 + 0.35 * m), k);
    }
    c = apply_fog(c, u_cam_pos, d, FAR_DEPTH);
    f_color = vec4(clamp(c.bgr, 0.0, 1.0), 1.0);
#ifdef AUX
    f_aux = vec2(FAR_DEPTH, 17.0);
#endif
}
