uniform vec3 u_col;
layout(location = 0) out vec4 f_color;
#ifdef AUX
layout(location = 1) out vec2 f_aux;
#endif
void main() {
    f_color = vec4(clamp(u_col.bgr, 0.0, 1.0), 1.0);
#ifdef AUX
    f_aux = vec2(FAR_DEPTH, 17.0);
#endif
}
