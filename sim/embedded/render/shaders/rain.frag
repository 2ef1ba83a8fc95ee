uniform vec4 u_col;  // rgb, a = opacity
in float v_alpha;
layout(location = 0) out vec4 f_color;
void main() { f_color = vec4(u_col.bgr, u_col.a * v_alpha); }
