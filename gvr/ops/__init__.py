"""Small pure helpers every layer may use: the one resize and the LR->HR grid arithmetic, temporal chunk plans
and blending, spatial tiling, colour fix, seeded generators, safe file writes and config sections."""
