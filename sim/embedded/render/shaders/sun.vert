// The sun disk: an octagon fan at the far plane around the sun's NDC position (drawn only when in view).
uniform vec2 u_sun_ndc;
uniform vec2 u_sun_radius;  // NDC radius in x and y
void main() {
    int tri = gl_VertexID / 3;
    int k = gl_VertexID % 3;
    vec2 p = u_sun_ndc;
    if (k > 0) {
        float a = 6.2831853 * float(tri + k - 1) / 8.0;
        p += vec2(cos(a), sin(a)) * u_sun_radius;
    }
    gl_Position = vec4(p, 1.0, 1.0);
}
