// Static town geometry: world-space vertices.
uniform mat4 u_vp;
in vec3 in_pos;
in vec3 in_nrm;
in vec3 in_col;
in float in_sem;
out vec3 v_world;
out vec3 v_nrm;
out vec3 v_col;
flat out float v_sem;
flat out float v_part;
flat out float v_state;
void main() {
    v_world = in_pos;
    v_nrm = in_nrm;
    v_col = in_col;
    v_sem = in_sem;
    v_part = -1.0;  // static surface
    v_state = 0.0;
    gl_Position = u_vp * vec4(in_pos, 1.0);
}
