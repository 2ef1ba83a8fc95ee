"""Camera rendering for the embedded simulator (moderngl on headless EGL), in CARLA's camera formats."""

from sim.embedded.render.formats import DEPTH_RANGE, decode_depth, encode_depth, encode_semantic
from sim.embedded.render.renderer import CAMERA_KINDS, SKY_CLASS, CameraFrame, RenderConfig, Renderer

__all__ = [
    "CAMERA_KINDS",
    "DEPTH_RANGE",
    "SKY_CLASS",
    "CameraFrame",
    "RenderConfig",
    "Renderer",
    "decode_depth",
    "encode_depth",
    "encode_semantic",
]
