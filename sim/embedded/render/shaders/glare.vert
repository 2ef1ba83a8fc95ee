// Veiling glare of a low sun: one full-viewport triangle pair; the per-pixel ray is interpolated (planar).
uniform vec3 u_cam_fwd;
uniform vec3 u_ray_x;   // camera right * tan(half fov x)
uniform vec3 u_ray_y;   // -camera up * tan(half fov y)
out vec3 v_ray;
void main() {
    int k = gl_VertexID % 6;
    vec2 p = vec2((k == 1 || k == 2 || k == 4) ? 1.0 : -1.0, (k == 2 || k == 4 || k == 5) ? 1.0 : -1.0);
    v_ray = u_cam_fwd + p.x * u_ray_x + p.y * u_ray_y;
    gl_Position = vec4(p, 0.0, 1.0);
}
