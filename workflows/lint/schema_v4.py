"""Fields Argo v4 and recent Kubernetes have that Hera 7.1's generated models predate.

Without them a valid v4 manifest would be reported for unknown keys. The small models below
follow the Argo v4.1 / Kubernetes 1.34 API types field for field; `EXTRA_FIELDS` says where
they hang in Hera's models.
"""

from __future__ import annotations

from hera.workflows import models as m
from pydantic import BaseModel, Field


class PodResourceClaim(BaseModel):
    name: str
    resource_claim_name: str | None = Field(None, alias="resourceClaimName")
    resource_claim_template_name: str | None = Field(None, alias="resourceClaimTemplateName")


class ExecutorPluginSidecar(BaseModel):
    automount_service_account_token: bool | None = Field(None, alias="automountServiceAccountToken")
    container: m.Container


class ExecutorPluginSpec(BaseModel):
    sidecar: ExecutorPluginSidecar


class ExecutorPlugin(BaseModel):
    metadata: m.ObjectMeta
    spec: ExecutorPluginSpec


class ContainerRestartRuleOnExitCodes(BaseModel):
    operator: str
    values: list[int] | None = None


class ContainerRestartRule(BaseModel):
    action: str
    exit_codes: ContainerRestartRuleOnExitCodes | None = Field(None, alias="exitCodes")


class FileKeySelector(BaseModel):
    key: str
    optional: bool | None = None
    path: str
    volume_name: str = Field(alias="volumeName")


class PodCertificateProjection(BaseModel):
    certificate_chain_path: str | None = Field(None, alias="certificateChainPath")
    credential_bundle_path: str | None = Field(None, alias="credentialBundlePath")
    key_path: str | None = Field(None, alias="keyPath")
    key_type: str = Field(alias="keyType")
    max_expiration_seconds: int | None = Field(None, alias="maxExpirationSeconds")
    signer_name: str = Field(alias="signerName")
    user_annotations: dict[str, str] | None = Field(None, alias="userAnnotations")


_RESTART_RULES = {"restartPolicyRules": list[ContainerRestartRule]}

EXTRA_FIELDS: dict[type, dict[str, object]] = {
    m.WorkflowSpec: {
        "podResources": m.ResourceRequirements,
        "resourceClaims": list[PodResourceClaim],
        "executorPlugins": list[ExecutorPlugin],
    },
    m.Template: {
        "podResources": m.ResourceRequirements,
        "resourceClaims": list[PodResourceClaim],
        "pendingTimeout": str,
    },
    m.HTTPArtifact: {"saveStreamViaFile": bool},
    m.S3Artifact: {"addressingStyle": str},
    m.S3ArtifactRepository: {"addressingStyle": str},
    m.Container: _RESTART_RULES,
    m.UserContainer: _RESTART_RULES,
    m.ScriptTemplate: _RESTART_RULES,
    m.ContainerNode: _RESTART_RULES,
    m.EnvVarSource: {"fileKeyRef": FileKeySelector},
    m.VolumeProjection: {"podCertificate": PodCertificateProjection},
}
