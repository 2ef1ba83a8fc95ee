// Veiling glare: light scattered in the lens and the windscreen lifts every pixel towards the glare colour,
// strongest around the sun (a 1/(1 + (angle/a0)^2) bloom) plus a uniform veil. Blended as
// out = glare * a + dst * (1 - a): brighter and lower in contrast, as a camera facing a low sun is.
uniform vec3 u_glare_col;
uniform float u_veil;     // uniform part of the opacity (0..1)
uniform float u_bloom;    // peak opacity of the bloom at the sun
uniform float u_width;    // angular radius (radians) where the bloom falls to half
in vec3 v_ray;
layout(location = 0) out vec4 f_color;
void main() {
    vec3 d = normalize(v_ray);
    float ang = acos(clamp(dot(d, sun_dir.xyz), -1.0, 1.0));
    float q = ang / u_width;
    float bloom = u_bloom / (1.0 + q * q);
    float a = clamp(u_veil + bloom, 0.0, 0.97);
    // the bloom adds light beyond the blend (a saturated core), the veil only lifts and flattens
    f_color = vec4(clamp(u_glare_col.bgr * (a + 1.5 * bloom), 0.0, 1.0), a);
}
