"""Competing upscalers that gvr is measured against (Real-ESRGAN x4plus through ncnn); the classical
resizes (bicubic, Lanczos) are `gvr.ops.resize`."""
