"""Every node type, by AM's `nodeType` name: a new node is one module and one line here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pushgate.journeys.nodes.base import NodeType
from pushgate.journeys.nodes.data_store_decision import DATA_STORE_DECISION
from pushgate.journeys.nodes.device_profile import DEVICE_PROFILE_COLLECTOR
from pushgate.journeys.nodes.get_authenticator_app import GET_AUTHENTICATOR_APP
from pushgate.journeys.nodes.mfa_registration_options import MFA_REGISTRATION_OPTIONS
from pushgate.journeys.nodes.opt_out import OPT_OUT
from pushgate.journeys.nodes.page import PAGE
from pushgate.journeys.nodes.password import COLLECTOR as PASSWORD_COLLECTOR
from pushgate.journeys.nodes.password import PLATFORM as PLATFORM_PASSWORD
from pushgate.journeys.nodes.push_registration import PUSH_REGISTRATION
from pushgate.journeys.nodes.push_result_verifier import PUSH_RESULT_VERIFIER
from pushgate.journeys.nodes.push_sender import PUSH_SENDER
from pushgate.journeys.nodes.push_wait import PUSH_WAIT
from pushgate.journeys.nodes.recovery_code_collector import RECOVERY_CODE_COLLECTOR
from pushgate.journeys.nodes.recovery_code_display import RECOVERY_CODE_DISPLAY
from pushgate.journeys.nodes.retry_limit import RETRY_LIMIT_DECISION
from pushgate.journeys.nodes.username import COLLECTOR as USERNAME_COLLECTOR
from pushgate.journeys.nodes.username import PLATFORM as PLATFORM_USERNAME

REGISTRY: Mapping[str, NodeType[Any]] = {
    node.name: node
    for node in (
        PAGE,
        PLATFORM_USERNAME,
        USERNAME_COLLECTOR,
        PLATFORM_PASSWORD,
        PASSWORD_COLLECTOR,
        DATA_STORE_DECISION,
        DEVICE_PROFILE_COLLECTOR,
        PUSH_SENDER,
        PUSH_WAIT,
        PUSH_RESULT_VERIFIER,
        MFA_REGISTRATION_OPTIONS,
        PUSH_REGISTRATION,
        GET_AUTHENTICATOR_APP,
        OPT_OUT,
        RECOVERY_CODE_DISPLAY,
        RECOVERY_CODE_COLLECTOR,
        RETRY_LIMIT_DECISION,
    )
}
