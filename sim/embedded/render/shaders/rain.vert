// Rain streaks as screen-space line segments, positions from an integer hash of (streak, frame, camera).
uniform uint u_seed;
uniform float u_len;     // mean length, NDC units of image height
uniform vec2 u_slant;    // unit direction in NDC (aspect-corrected)
out float v_alpha;
float rnd(inout uint h) { h = hash_u(h); return float(h) * (1.0 / 4294967295.0); }
void main() {
    uint h = hash_u(uint(gl_InstanceID) * 747796405u + u_seed);
    vec2 p = vec2(rnd(h), rnd(h)) * 2.4 - 1.2;
    float len = u_len * (0.4 + 1.2 * rnd(h));
    v_alpha = 0.3 + 0.7 * rnd(h);
    p += float(gl_VertexID) * u_slant * len;
    gl_Position = vec4(p, 0.0, 1.0);
}
