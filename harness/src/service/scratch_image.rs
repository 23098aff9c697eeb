//! A static binary in its production image: alone in a `FROM scratch` image, run as a non-root
//! user, started by testcontainers with host networking. This is how a CGO_ENABLED=0 Go service
//! ships, so running a candidate this way checks that it needs nothing the image lacks (no
//! shell, no libc, no CA bundle, no writable working directory, no root).
//!
//! The image definition lives in `images/static/` (Dockerfile, passwd, group), shared with
//! `images/static/build.sh`; the harness sends those files and the binary as the build context
//! through testcontainers (no docker CLI). Images are tagged by the binary's content hash, so a
//! rebuilt candidate gets a new image and an unchanged one is built once.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};
use testcontainers::core::Mount;
use testcontainers::runners::{AsyncBuilder, AsyncRunner};
use testcontainers::{ContainerAsync, GenericBuildableImage, GenericImage, ImageExt};

use crate::service::docker::{self, DockerError, Engine};

/// The non-root user the image runs as (`app` in its `/etc/passwd`).
pub const UID: u32 = 65532;
/// Where the binary is inside the image (its entrypoint).
pub const ENTRYPOINT: &str = "/app/service";

const DOCKERFILE: &str = include_str!("../../../images/static/Dockerfile");
const PASSWD: &str = include_str!("../../../images/static/passwd");
const GROUP: &str = include_str!("../../../images/static/group");

/// Why a binary could not be put into, or run from, its image.
#[derive(Debug, thiserror::Error)]
pub enum ScratchImageError {
    /// The engine could not be used.
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// The binary could not be read or is not static.
    #[error("{binary}: {reason}")]
    Binary {
        /// The binary's path.
        binary: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Building or starting through testcontainers failed.
    #[error("{action} failed: {reason}")]
    Testcontainers {
        /// What was being done.
        action: String,
        /// testcontainers' error.
        reason: String,
    },
}

/// Build (unless the engine already has it) the `FROM scratch` image of `binary`, named
/// `conform/static-<name>:<first 16 hex of its sha256>`; returns the image reference.
pub async fn build(binary: &Path, name: &str) -> Result<String, ScratchImageError> {
    let bad = |reason: String| ScratchImageError::Binary {
        binary: binary.display().to_string(),
        reason,
    };
    let bytes = std::fs::read(binary).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let linking = crate::elf::parse(&bytes).map_err(|e| bad(format!("not an ELF executable: {e}")))?;
    if !linking.is_static() {
        return Err(bad(format!(
            "it is dynamically linked (interpreter {:?}); a scratch image has no libc (build with CGO_ENABLED=0)",
            linking.interpreter.unwrap_or_default()
        )));
    }
    let hash: String = Sha256::digest(&bytes)[..8].iter().map(|b| format!("{b:02x}")).collect();
    let repository = format!("conform/static-{}", sanitize(name));
    let image = format!("{repository}:{hash}");
    let engine = Engine::connect().await?;
    if engine.has_image(&image).await? {
        return Ok(image);
    }
    let _built = GenericBuildableImage::new(repository, hash)
        .with_dockerfile_string(DOCKERFILE)
        .with_data(PASSWD.as_bytes().to_vec(), "passwd")
        .with_data(GROUP.as_bytes().to_vec(), "group")
        .with_file(binary, "service")
        .build_image()
        .await
        .map_err(|e| ScratchImageError::Testcontainers {
            action: format!("building {image} from {}", binary.display()),
            reason: e.to_string(),
        })?;
    Ok(image)
}

/// A Docker-safe repository component: lowercase letters, digits, `-`.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// Start `image` (from [`build`]) with exactly `env`, host networking, the conform labels and a
/// tmpfs `/tmp`. It waits for nothing: the caller polls the service's own readiness, as for a
/// native candidate. Dropping the handle removes the container.
pub async fn run(
    image: &str,
    env: &BTreeMap<String, String>,
) -> Result<ContainerAsync<GenericImage>, ScratchImageError> {
    let (repository, tag) = image.rsplit_once(':').unwrap_or((image, "latest"));
    let mut request = docker::conform_request(GenericImage::new(repository, tag))
        .with_mount(Mount::tmpfs_mount("/tmp").with_mode(0o1777));
    for (name, value) in env {
        request = request.with_env_var(name, value);
    }
    let _pass = crate::reaper::pass().map_err(|e| ScratchImageError::Testcontainers {
        action: format!("starting {image}"),
        reason: e.to_string(),
    })?;
    request.start().await.map_err(|e| ScratchImageError::Testcontainers {
        action: format!("starting {image}"),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn repository_names_are_docker_safe() {
        assert_eq!(super::sanitize("selftest-serves"), "selftest-serves");
        assert_eq!(super::sanitize("My_App.v2"), "my-app-v2");
    }

    #[test]
    fn the_image_runs_the_binary_as_the_non_root_user() {
        assert!(super::DOCKERFILE.contains("FROM scratch"));
        assert!(super::DOCKERFILE.contains(&format!("USER {0}:{0}", super::UID)));
        assert!(super::DOCKERFILE.contains(&format!("ENTRYPOINT [\"{}\"]", super::ENTRYPOINT)));
        assert!(super::PASSWD.contains(&format!("app:x:{0}:{0}:", super::UID)));
    }
}
