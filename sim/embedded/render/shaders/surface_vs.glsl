// Per-vertex part of surface shading, shared by scene.vert and actor.vert. Sun and sky ambient are
// exact per vertex for flat-shaded faces (they depend on the normal only); wet reflections and light fog
// vary slowly enough to be interpolated; puddle shapes, night lights and dense fog are per pixel.
uniform vec3 u_cam_fwd;
out vec3 v_world;
out vec3 v_lit;      // albedo * (ambient + sun) + emission, wet reflections included
out vec3 v_puddle;   // the same point under a puddle (PUDDLES variant)
out vec3 v_albedo;
out vec3 v_nrm;      // towards the camera
out float v_fogh;    // fog_height_factor at this vertex (per-pixel fog, FOG variant)
out float v_fog;     // fog transmittance at this vertex (per-vertex fog: light fog, exact enough)
out float v_depth;   // planar depth along the camera axis: affine in position, so interpolation is exact
flat out float v_sem;
flat out float v_puddly;  // 1 where puddles may form (road, other flat ground)

void shade_vertex(vec3 world, vec3 nrm, vec3 albedo, float part_f, float state, float sem_f) {
    vec3 n = normalize(nrm);
    if (dot(n, u_cam_pos - world) < 0.0) n = -n;  // two-sided
    int part = int(floor(part_f + 0.5));
    int sem = int(floor(sem_f + 0.5));
    float lights = fog_par.w;
    vec3 emit = vec3(0.0);
    float gloss = 0.0;
    if (part == 2) {  // headlight
        emit = vec3(1.0, 0.97, 0.85) * (0.2 + 1.5 * lights);
    } else if (part == 3) {  // tail light
        emit = vec3(0.9, 0.05, 0.03) * (0.05 + 0.9 * lights);
    } else if (part >= 4 && part <= 6) {  // traffic-light bulbs red, yellow, green
        vec3 bulb = part == 4 ? vec3(1.0, 0.1, 0.05) : (part == 5 ? vec3(1.0, 0.75, 0.05) : vec3(0.1, 1.0, 0.35));
        if (int(floor(state + 0.5)) == part - 4) emit = bulb * 1.3;
        else albedo = bulb * 0.07;
    } else if (part == 7) {  // street-lamp head
        emit = vec3(1.0, 0.88, 0.65) * (0.05 + 1.6 * lights);
        albedo = vec3(0.3);
    } else if (part == 8) {  // glass
        gloss = 0.5;
    } else if (part < 0 && (sem == 11 || sem == 12 || sem == 13)) {  // ground gets wet
        float w = wet_par.x * (sem == 11 ? 1.0 : 0.6);
        albedo *= mix(1.0, 0.5, w);
        gloss = 0.3 * w;
    }
    float hemi = n.z * 0.5 + 0.5;
    vec3 light = mix(amb_ground.rgb, amb_sky.rgb, hemi) + sun_col.rgb * max(dot(n, sun_dir.xyz), 0.0);
    vec3 lit = albedo * light + emit;
    // glossy reflection of a cheap sky (no halo) and the sun, Schlick fresnel
    vec3 V = normalize(u_cam_pos - world);
    vec3 R = reflect(-V, n);
    vec3 sky = mix(horizon.rgb, zenith.rgb, clamp(R.z, 0.0, 1.0));
    float k = 1.0 - max(dot(n, V), 0.0);
    float fres = 0.04 + 0.96 * k * k * k * k * k;
    float sh = max(dot(n, normalize(sun_dir.xyz + V)), 0.0);
    float s8 = sh * sh * sh * sh * sh * sh * sh * sh;
    float s64 = s8 * s8 * s8 * s8 * s8 * s8 * s8 * s8;
    vec3 spec = sun_col.rgb * 3.0 * s64;
    v_lit = gloss > 0.0 ? mix(lit, sky, gloss * fres) + spec * gloss : lit;
    v_puddle = mix(lit * 0.4, sky, 0.9 * fres) + sun_col.rgb * 3.0 * (s64 * s64) * 0.9;
    v_puddly = (part < 0 && (sem == 11 || sem == 12)) ? 1.0 : 0.0;
    v_world = world;
    v_albedo = albedo;
    v_nrm = n;
    v_fogh = fog_height_factor(world.z);
    v_fog = fog_transmittance(length(world - u_cam_pos), v_fogh);
    v_depth = dot(world - u_cam_pos, u_cam_fwd);
    v_sem = sem_f;

}
