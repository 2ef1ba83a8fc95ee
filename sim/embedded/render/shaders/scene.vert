// Static town geometry: world-space vertices.
uniform mat4 u_vp;
in vec3 in_pos;
in vec3 in_nrm;
in vec3 in_col;
in float in_sem;
void main() {
    shade_vertex(in_pos, in_nrm, in_col, -1.0, 0.0, in_sem);
    gl_Position = u_vp * vec4(in_pos, 1.0);
}
