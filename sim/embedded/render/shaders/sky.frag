// Sky: per-vertex gradient, halo and fog (sky.vert); per-pixel clouds; the sun disk is sun.vert/frag. llvmpipe runs both sides of
// an `if` under a mask, so clouds are a compile-time variant (CLOUDS): a texture fetch per pixel costs ~4 ms
// over six 400x225 cameras.
in vec3 v_sky;
in float v_fog;
in vec3 v_cloud;
layout(location = 0) out vec4 f_color;
#ifdef AUX
layout(location = 1) out vec2 f_aux;
#endif
void main() {
    vec3 c = v_sky;
#ifdef CLOUDS
    float m = texture(u_noise, v_cloud.xy).r;
    float th = 1.05 - 1.1 * wet_par.z;
    c = mix(c, cloud_col.rgb * (0.8 + 0.35 * m), smoothstep(th, th + 0.25, m) * v_cloud.z);
    c = mix(fog_col.rgb, c, v_fog);
#endif
    f_color = vec4(clamp(c.bgr, 0.0, 1.0), 1.0);
#ifdef AUX
    f_aux = vec2(FAR_DEPTH, 17.0);
#endif
}
