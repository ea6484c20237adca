"""The staging cluster's control plane: the ECS service whose task count a scale run sets (``ecs.py``)."""

from capacity.cluster.ecs import EcsService, ScalingTarget, ServiceState

__all__ = ["EcsService", "ScalingTarget", "ServiceState"]
