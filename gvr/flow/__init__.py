"""Rectified flow: path, loss, timestep samplers and the Euler sampler (pure functions)."""

from gvr.flow.euler import euler_timesteps, sample_euler
from gvr.flow.objective import FlowDraw, FlowObjective, path_loss
from gvr.flow.source import FlowSource
from gvr.flow.path import augment_condition, flow_matching_loss, interpolate, predict_x0, velocity_from_data, velocity_target
from gvr.flow.timesteps import (
    DetailAwareTimesteps,
    LogitNormalTimesteps,
    ShiftedTimesteps,
    TimestepSampler,
    UniformTimesteps,
    shift_time,
)

__all__ = [
    "DetailAwareTimesteps",
    "FlowDraw",
    "FlowObjective",
    "FlowSource",
    "LogitNormalTimesteps",
    "ShiftedTimesteps",
    "TimestepSampler",
    "UniformTimesteps",
    "augment_condition",
    "euler_timesteps",
    "flow_matching_loss",
    "interpolate",
    "path_loss",
    "predict_x0",
    "sample_euler",
    "shift_time",
    "velocity_from_data",
    "velocity_target",
]
