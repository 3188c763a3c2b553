"""A row's hardware: the agent's system_info in the contract layout, else its results'."""

from __future__ import annotations

from common.comparison.hardware import hardware_of
from common.comparison.model import GpuSummary, Hardware
from common.models import RegisteredAgentInfo

CONTRACT = {
    "system": {"hostname": "box", "total_memory_gb": 62.7812},
    "cpu": {"model": "AMD EPYC 7763", "cores_logical": 128, "cores_physical": 64},
    "gpus": [{"index": 0, "name": "NVIDIA H100", "memory_total_mb": 81559, "uuid": "GPU-1"}],
}
RESULT_HARDWARE = {
    "cpu": {"model": "Intel Xeon", "cores_logical": 8},
    "memory_total_gb": 15.5,
    "gpus": [],
}


def registered(system_info: dict) -> RegisteredAgentInfo:
    return RegisteredAgentInfo(agent_id="a", agent_url="http://a", system_info=system_info)


def test_the_agents_contract_layout_wins() -> None:
    found = hardware_of(registered(CONTRACT), [{"hardware_info": RESULT_HARDWARE}])
    assert found == Hardware(
        cpu_model="AMD EPYC 7763",
        cores_logical=128,
        memory_gb=62.78,
        gpus=[GpuSummary(name="NVIDIA H100", memory_total_mb=81559)],
    )


def test_results_fill_what_the_agent_does_not_say() -> None:
    found = hardware_of(registered({"hostname": "old"}), [None, {"hardware_info": RESULT_HARDWARE}])
    assert found == Hardware(cpu_model="Intel Xeon", cores_logical=8, memory_gb=15.5)


def test_an_unregistered_agent_with_older_results() -> None:
    legacy = {"numpy_version": "2.1", "logical_cpus": 4, "memory": {"total_bytes": 8 * 1024**3}}
    assert hardware_of(None, [{"hardware_info": legacy}]) == Hardware(
        cores_logical=4, memory_gb=8.0
    )
    assert hardware_of(None, []) == Hardware()
