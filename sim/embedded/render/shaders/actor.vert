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
out vec3 v_world;
out vec3 v_nrm;
out vec3 v_col;
flat out float v_sem;
flat out float v_part;
flat out float v_state;
void main() {
    float c = cos(radians(i_yaw)), s = sin(radians(i_yaw));
    vec3 p = in_pos * i_ext;
    vec3 n = in_nrm / i_ext;
    v_world = i_pos + vec3(c * p.x - s * p.y, s * p.x + c * p.y, p.z);
    v_nrm = vec3(c * n.x - s * n.y, s * n.x + c * n.y, n.z);
    v_col = in_part == 0.0 ? i_col : in_col;
    v_sem = i_sem;
    v_part = in_part;
    v_state = i_state;
    gl_Position = u_vp * vec4(v_world, 1.0);
}
