// Instanced actor templates: unit-box vertices scaled by the instance extent, rotated by yaw (CARLA: from +x
// towards +y), placed at the instance origin (on the ground).
uniform mat4 u_vp;
in vec3 in_pos;     // unit box: x, y in [-1, 1], z in [0, 2]
in vec3 in_nrm;
in vec3 in_col;
in float in_part;
in vec3 i_pos;
in float i_yaw;     // degrees
in vec3 i_ext;      // half sizes (forward, right, up)
in vec3 i_col;
in float i_sem;
in float i_state;
void main() {
    float c = cos(radians(i_yaw)), s = sin(radians(i_yaw));
    vec3 p = in_pos * i_ext;
    vec3 n = in_nrm / i_ext;
    vec3 world = i_pos + vec3(c * p.x - s * p.y, s * p.x + c * p.y, p.z);
    shade_vertex(world, vec3(c * n.x - s * n.y, s * n.x + c * n.y, n.z), in_part == 0.0 ? i_col : in_col,
                 in_part, i_state, i_sem);
    gl_Position = u_vp * vec4(world, 1.0);
}
