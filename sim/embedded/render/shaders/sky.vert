// Full-screen triangle at the far plane; the ray through each pixel is interpolated linearly (exact).
uniform vec3 u_cam_fwd;
uniform vec3 u_ray_x;   // camera right * tan(half fov x)
uniform vec3 u_ray_y;   // -camera up * tan(half fov y) (GL y is mirrored, see math3d.projection)
out vec3 v_ray;
void main() {
    vec2 p = vec2(gl_VertexID == 1 ? 3.0 : -1.0, gl_VertexID == 2 ? 3.0 : -1.0);
    v_ray = u_cam_fwd + p.x * u_ray_x + p.y * u_ray_y;
    gl_Position = vec4(p, 1.0, 1.0);
}
