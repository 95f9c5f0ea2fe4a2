//! In addition to restricting HostPath volumes, the restricted profile limits
//! usage of inline pod volume sources to: configMap, csi, downwardAPI, emptyDir,
//! ephemeral, image, persistentVolumeClaim, projected, secret.
//!
//! **Restricted Fields:**
//! spec.volumes[*].hostPath
//! spec.volumes[*].gcePersistentDisk
//! spec.volumes[*].awsElasticBlockStore
//! spec.volumes[*].gitRepo
//! spec.volumes[*].nfs
//! spec.volumes[*].iscsi
//! spec.volumes[*].glusterfs
//! spec.volumes[*].rbd
//! spec.volumes[*].flexVolume
//! spec.volumes[*].cinder
//! spec.volumes[*].cephfs
//! spec.volumes[*].flocker
//! spec.volumes[*].fc
//! spec.volumes[*].azureFile
//! spec.volumes[*].vsphereVolume
//! spec.volumes[*].quobyte
//! spec.volumes[*].azureDisk
//! spec.volumes[*].portworxVolume
//! spec.volumes[*].photonPersistentDisk
//! spec.volumes[*].scaleIO
//! spec.volumes[*].storageos
//!
//! **Allowed Values:** undefined/null

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{PodSpec, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::util::{Violation, join_quote, pluralize};
use super::{Check, Level, Variant};

pub(crate) static CHECK: Check = Check {
    id: "restrictedVolumes",
    level: Level::Restricted,
    // PSA allowed `image` volumes (Kubernetes 1.33) inside this v1.0 variant,
    // so they pass at every version.
    variants: &[Variant {
        min_minor: 0,
        run: restricted_volumes_1_0,
        overrides: &["hostPathVolumes"],
    }],
};

fn allowed(vol: &Volume) -> bool {
    vol.config_map.is_some()
        || vol.csi.is_some()
        || vol.downward_api.is_some()
        || vol.empty_dir.is_some()
        || vol.ephemeral.is_some()
        || vol.image.is_some()
        || vol.persistent_volume_claim.is_some()
        || vol.projected.is_some()
        || vol.secret.is_some()
}

/// The name PSA reports for a restricted volume's source, checked in PSA's
/// order; "unknown" when no source is set.
fn restricted_type(vol: &Volume) -> &'static str {
    let sources = [
        (vol.host_path.is_some(), "hostPath"),
        (vol.gce_persistent_disk.is_some(), "gcePersistentDisk"),
        (
            vol.aws_elastic_block_store.is_some(),
            "awsElasticBlockStore",
        ),
        (vol.git_repo.is_some(), "gitRepo"),
        (vol.nfs.is_some(), "nfs"),
        (vol.iscsi.is_some(), "iscsi"),
        (vol.glusterfs.is_some(), "glusterfs"),
        (vol.rbd.is_some(), "rbd"),
        (vol.flex_volume.is_some(), "flexVolume"),
        (vol.cinder.is_some(), "cinder"),
        (vol.cephfs.is_some(), "cephfs"),
        (vol.flocker.is_some(), "flocker"),
        (vol.fc.is_some(), "fc"),
        (vol.azure_file.is_some(), "azureFile"),
        (vol.vsphere_volume.is_some(), "vsphereVolume"),
        (vol.quobyte.is_some(), "quobyte"),
        (vol.azure_disk.is_some(), "azureDisk"),
        (vol.photon_persistent_disk.is_some(), "photonPersistentDisk"),
        (vol.portworx_volume.is_some(), "portworxVolume"),
        (vol.scale_io.is_some(), "scaleIO"),
        (vol.storageos.is_some(), "storageos"),
    ];
    sources
        .into_iter()
        .find(|(set, _)| *set)
        .map_or("unknown", |(_, name)| name)
}

fn restricted_volumes_1_0(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let mut bad_volumes = Vec::new();
    let mut bad_types = BTreeSet::new();
    let mut fields = Vec::new();
    let volumes = spec.volumes.as_deref().unwrap_or_default();
    for (index, vol) in volumes.iter().enumerate() {
        if !allowed(vol) {
            bad_volumes.push(vol.name.as_str());
            let source = restricted_type(vol);
            bad_types.insert(source);
            fields.push(if source == "unknown" {
                format!("volumes[{index}]")
            } else {
                format!("volumes[{index}].{source}")
            });
        }
    }
    if bad_volumes.is_empty() {
        return None;
    }
    Some(
        Violation::new(
            "restricted volume types",
            format!(
                "{} {} {} {} {}",
                pluralize("volume", "volumes", bad_volumes.len()),
                join_quote(&bad_volumes),
                pluralize("uses", "use", bad_volumes.len()),
                pluralize(
                    "restricted volume type",
                    "restricted volume types",
                    bad_types.len()
                ),
                join_quote(&bad_types)
            ),
        )
        .with_fields(fields),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::pss::Version;
    use crate::pss::test_util::*;

    const ID: &str = "restrictedVolumes";
    const REASON: &str = "restricted volume types";

    #[test]
    fn passes_with_allowed_sources() {
        let p = json!({"spec": {"volumes": [
            {"name": "a", "configMap": {"name": "cm"}},
            {"name": "b", "csi": {"driver": "d"}},
            {"name": "c", "downwardAPI": {}},
            {"name": "d", "emptyDir": {}},
            {"name": "e", "ephemeral": {}},
            {"name": "f", "image": {"reference": "registry/img:1"}},
            {"name": "g", "persistentVolumeClaim": {"claimName": "x"}},
            {"name": "h", "projected": {}},
            {"name": "i", "secret": {}},
        ]}});
        assert_eq!(run(ID, R, v(0), p.clone()), pass());
        assert_eq!(run(ID, R, Version::Latest, p), pass());
    }

    #[test]
    fn one_volume() {
        let p = json!({"spec": {"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}});
        assert_eq!(
            run(ID, R, v(0), p),
            fail(
                ID,
                REASON,
                r#"volume "h" uses restricted volume type "hostPath""#
            )
        );
    }

    #[test]
    fn volumes_in_order_and_types_sorted() {
        let p = json!({"spec": {"volumes": [
            {"name": "n", "nfs": {"server": "s", "path": "/"}},
            {"name": "ok", "emptyDir": {}},
            {"name": "g", "gitRepo": {"repository": "r"}},
            {"name": "none"},
            {"name": "n2", "nfs": {"server": "s", "path": "/"}},
        ]}});
        assert_eq!(
            run(ID, R, v(25), p),
            fail(
                ID,
                REASON,
                r#"volumes "n", "g", "none", "n2" use restricted volume types "gitRepo", "nfs", "unknown""#
            )
        );
    }

    /// PSA's fixture pod (`test/fixtures.go`), with `volumes`: what the pods in
    /// `test/testdata/restricted/v1.N/*/restrictedvolumes*.yaml` hold.
    fn psa_fixture(volumes: serde_json::Value) -> serde_json::Value {
        let container = |name: &str| {
            json!({"name": name, "image": "registry.k8s.io/pause",
                   "securityContext": {"allowPrivilegeEscalation": false}})
        };
        json!({"spec": {
            "containers": [container("container1")],
            "initContainers": [container("initcontainer1")],
            "securityContext": {"runAsNonRoot": true},
            "volumes": volumes
        }})
    }

    /// `run`, after the API server's defaults (which PSA's fixtures go through).
    fn run_defaulted(version: Version, mut pod: serde_json::Value) -> Vec<crate::pss::CheckResult> {
        crate::api_defaults::apply_pod_defaults(&mut pod);
        run(ID, R, version, pod)
    }

    fn every_version() -> impl Iterator<Item = Version> {
        (0..=crate::pss::NEWEST_KNOWN_MINOR)
            .map(Version::Minor)
            .chain([Version::Latest])
    }

    #[test]
    fn psa_pass_fixture_restrictedvolumes0_passes_at_every_version() {
        // `volume0` names no source: the API server makes it an emptyDir.
        let pod = psa_fixture(json!([
            {"name": "volume0"},
            {"name": "volume1", "emptyDir": {}},
            {"name": "volume2", "secret": {"secretName": "test"}},
            {"name": "volume3", "persistentVolumeClaim": {"claimName": "test"}},
            {"name": "volume4", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
            {"name": "volume5", "configMap": {"name": "test"}},
            {"name": "volume6", "projected": {"sources": []}}
        ]));
        for version in every_version() {
            assert_eq!(run_defaulted(version, pod.clone()), pass(), "{version}");
        }
        // Without the defaults, the source-less volume is what PSA would call "unknown".
        assert_eq!(
            run(ID, R, Version::Latest, pod),
            fail(
                ID,
                REASON,
                r#"volume "volume0" uses restricted volume type "unknown""#
            )
        );
    }

    #[test]
    fn psa_fail_fixtures_restrictedvolumes_fail_at_every_version() {
        let cases = [
            ("gcePersistentDisk", json!({"pdName": "testing"})),
            ("awsElasticBlockStore", json!({"volumeID": "testing"})),
            (
                "gitRepo",
                json!({"repository": "github.com/kubernetes/kubernetes"}),
            ),
            ("nfs", json!({"server": "testing", "path": "/testing"})),
            (
                "iscsi",
                json!({"targetPortal": "testing", "iqn": "iqn.2001-04.com.example:storage.kube.sys1.xyz", "lun": 0}),
            ),
            (
                "glusterfs",
                json!({"path": "testing", "endpoints": "testing"}),
            ),
            ("rbd", json!({"monitors": ["testing"], "image": "testing"})),
            ("flexVolume", json!({"driver": "testing"})),
            ("cinder", json!({"volumeID": "testing"})),
            ("cephfs", json!({"monitors": ["testing"]})),
            ("flocker", json!({"datasetName": "testing"})),
            ("fc", json!({"wwids": ["testing"]})),
            (
                "azureFile",
                json!({"secretName": "testing", "shareName": "testing"}),
            ),
            ("vsphereVolume", json!({"volumePath": "testing"})),
            (
                "quobyte",
                json!({"registry": "localhost:1234", "volume": "testing"}),
            ),
            (
                "azureDisk",
                json!({"diskName": "testing", "diskURI": "https://test.blob.core.windows.net/test/test.vhd"}),
            ),
            (
                "portworxVolume",
                json!({"volumeID": "testing", "fsType": "ext4"}),
            ),
            (
                "scaleIO",
                json!({"volumeName": "testing", "gateway": "localhost", "system": "testing", "secretRef": {"name": "s"}}),
            ),
            ("storageos", json!({"volumeName": "test"})),
            ("hostPath", json!({"path": "/dev/null"})),
        ];
        for (source, fields) in cases {
            let name = format!("volume-{}", source.to_lowercase());
            let pod = psa_fixture(json!([{"name": name, source: fields}]));
            let want = fail(
                ID,
                REASON,
                &format!(r#"volume "{name}" uses restricted volume type "{source}""#),
            );
            for version in every_version() {
                assert_eq!(
                    run_defaulted(version, pod.clone()),
                    want,
                    "{source} {version}"
                );
            }
        }
    }

    #[test]
    fn restricted_only() {
        let p = json!({"spec": {"volumes": [{"name": "n", "nfs": {"server": "s", "path": "/"}}]}});
        assert_eq!(run(ID, B, Version::Latest, p), pass());
    }

    #[test]
    fn names_the_source_of_the_restricted_volume_only() {
        let p = json!({"spec": {"volumes": [
            {"name": "ok", "configMap": {"name": "c"}},
            {"name": "nfs", "nfs": {"server": "s", "path": "/"}},
            {"name": "none"},
        ]}});
        assert_eq!(fields(ID, R, v(0), p), [["volumes[1].nfs", "volumes[2]"]]);
        let p = json!({"spec": {"volumes": [{"name": "ok", "secret": {"secretName": "s"}}]}});
        assert!(fields(ID, R, v(0), p).is_empty());
    }
}
