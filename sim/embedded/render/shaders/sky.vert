// Sky as a GRID_X x GRID_Y grid of quads at the far plane, generated from gl_VertexID. The smooth parts (gradient,
// halo, fog) are computed per vertex, clouds per pixel. Rays interpolate exactly (planar).
uniform vec3 u_cam_fwd;
uniform vec3 u_ray_x;   // camera right * tan(half fov x)
uniform vec3 u_ray_y;   // -camera up * tan(half fov y) (GL y is mirrored, see math3d.projection)
out vec3 v_sky;
out float v_fog;        // fog transmittance to the horizon along this ray
out vec3 v_cloud;       // cloud-layer texture uv (xy), fade-in above the horizon (z)
const int GRID_X = 8;
const int GRID_Y = 6;
void main() {
    int cell = gl_VertexID / 6;
    int corner = gl_VertexID % 6;
    int cx = cell % GRID_X + ((corner == 1 || corner == 2 || corner == 4) ? 1 : 0);
    int cy = cell / GRID_X + ((corner == 2 || corner == 4 || corner == 5) ? 1 : 0);
    vec2 p = vec2(float(cx) / float(GRID_X), float(cy) / float(GRID_Y)) * 2.0 - 1.0;
    vec3 d = normalize(u_cam_fwd + p.x * u_ray_x + p.y * u_ray_y);
    v_sky = sky_base(d);
    v_cloud = vec3(d.xy / (max(d.z, 0.0) + 0.08) * 0.12 + vec2(wet_par.w, 0.0), smoothstep(0.0, 0.12, d.z));
    v_fog = fog_transmittance(FAR_DEPTH, fog_height_factor(u_cam_pos.z + d.z * FAR_DEPTH));
#ifndef CLOUDS
    v_sky = mix(fog_col.rgb, v_sky, v_fog);
#endif
    gl_Position = vec4(p, 1.0, 1.0);
}
