"""Camera rendering for the embedded simulator (moderngl, headless EGL)."""

from sim.embedded.render.renderer import (
    CAMERA_KINDS,
    SKY_CLASS,
    CameraFrame,
    RenderConfig,
    Renderer,
    decode_depth,
    encode_depth,
    encode_semantic,
)

__all__ = ["CAMERA_KINDS", "SKY_CLASS", "CameraFrame", "RenderConfig", "Renderer", "decode_depth", "encode_depth",
           "encode_semantic"]
