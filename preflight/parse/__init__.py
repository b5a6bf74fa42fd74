"""preflight.parse: controller-side parsers of the collector's raw outputs (each returns a typed result or Unparseable)."""

from preflight.parse.common import Unparseable, strip_corpus_header
from preflight.parse.fabricmanager import parse_fabric_block, parse_fabricmanager_log
from preflight.parse.ibstat import parse_dotted_counters, parse_ibdev2netdev, parse_ibstat, parse_ibv_devinfo
from preflight.parse.nccl_tests import parse_nccl_tests
from preflight.parse.nvidia_smi import (
    parse_list_gpus,
    parse_query_csv,
    parse_query_sections,
    parse_table,
    parse_version,
)
from preflight.parse.nvlink import parse_nvlink_capabilities, parse_nvlink_remote, parse_nvlink_status
from preflight.parse.topo import parse_p2p_matrix, parse_topo_matrix
from preflight.parse.versions import (
    parse_driver_version_file,
    parse_driver_version_info,
    parse_meminfo,
    parse_modinfo,
    parse_modinfo_details,
    parse_nccl_lib_info,
    parse_nccl_version_from_libs,
    parse_nvcc_version,
    parse_ofed_info,
    parse_ofed_info_details,
    parse_os_release,
)
from preflight.parse.xid import describe_xid, load_xid_catalog, parse_kernel_log

__all__ = [
    "Unparseable", "describe_xid", "load_xid_catalog", "parse_dotted_counters", "parse_driver_version_file",
    "parse_driver_version_info", "parse_fabric_block", "parse_fabricmanager_log", "parse_ibdev2netdev", "parse_ibstat",
    "parse_ibv_devinfo", "parse_kernel_log", "parse_list_gpus", "parse_meminfo", "parse_modinfo", "parse_modinfo_details",
    "parse_nccl_lib_info", "parse_nccl_tests", "parse_nccl_version_from_libs", "parse_nvcc_version",
    "parse_nvlink_capabilities", "parse_nvlink_remote", "parse_nvlink_status", "parse_ofed_info", "parse_ofed_info_details",
    "parse_os_release", "parse_p2p_matrix", "parse_query_csv", "parse_query_sections", "parse_table", "parse_topo_matrix",
    "parse_version", "strip_corpus_header",
]
