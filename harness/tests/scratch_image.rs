//! A candidate in its production image, for real: the `serves` self-test program is built static
//! (CGO_ENABLED=0), wrapped into the `FROM scratch` image of `images/static/`, started by
//! testcontainers with host networking, and must serve on loopback as the non-root user, with
//! nothing left once its handle is dropped. A dynamically linked binary is refused by name.
//!
//! Needs a Docker engine: fails under `CI=true`, skipped with the reason printed elsewhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use harness::candidate::{BuildCache, Candidate, Variant};
use harness::poll::{self, Poll};
use harness::service::docker::{self, Engine};
use harness::service::scratch_image::{self, ScratchImageError};
use harness::timeouts;

async fn engine() -> Option<Engine> {
    match Engine::connect().await {
        Ok(engine) => Some(engine),
        Err(err) if docker::required() => panic!("CI is set, so a Docker engine must answer: {err}"),
        Err(err) => {
            eprintln!("SKIPPED: {err}");
            None
        }
    }
}

fn serves_binary() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/selftest/serves");
    let candidate = Candidate::load(&dir).unwrap();
    candidate
        .build(&Variant::default(), &BuildCache::from_env())
        .unwrap()
        .binary
}

#[tokio::test]
async fn a_static_binary_serves_from_its_scratch_image_as_non_root() {
    let Some(engine) = engine().await else {
        return;
    };
    let binary = tokio::task::spawn_blocking(serves_binary).await.unwrap();
    let image = scratch_image::build(&binary, "selftest-serves").await.unwrap();
    assert!(image.starts_with("conform/static-selftest-serves:"), "{image}");
    // Built once: a second build of the same binary finds the image.
    assert_eq!(scratch_image::build(&binary, "selftest-serves").await.unwrap(), image);

    let port = harness::ports::free_port().unwrap();
    let env = BTreeMap::from([("PORT".to_string(), port.to_string())]);
    let container = scratch_image::run(&image, &env).await.unwrap();
    let id = container.id().to_string();
    let url = format!("http://127.0.0.1:{port}/healthz");
    let body = poll::wait_for(
        format!("GET {url} to answer"),
        timeouts::BOOT_DEFAULT,
        timeouts::POLL_INTERVAL,
        || async {
            match reqwest::get(&url).await {
                Ok(response) => match response.text().await {
                    Ok(text) => Poll::Ready(text),
                    Err(err) => Poll::NotYet(err.to_string()),
                },
                Err(err) => Poll::NotYet(err.to_string()),
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(body, "ok");

    let inspected = engine.client().inspect_container(&id, None).await.unwrap();
    let config = inspected.config.unwrap();
    assert_eq!(config.user.as_deref(), Some("65532:65532"));
    assert_eq!(
        config
            .labels
            .unwrap_or_default()
            .get(docker::RUN_LABEL)
            .map(String::as_str),
        Some(docker::run_id())
    );
    assert_eq!(
        inspected.host_config.and_then(|h| h.network_mode).as_deref(),
        Some("host")
    );
    let pid = inspected.state.and_then(|s| s.pid).unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(uid.split_whitespace().skip(1).all(|u| u == "65532"), "{uid}");

    drop(container);
    assert!(
        engine.client().inspect_container(&id, None).await.is_err(),
        "container {id} is still there after drop"
    );
}

#[tokio::test]
async fn a_dynamic_binary_is_refused_by_name() {
    if engine().await.is_none() {
        return;
    }
    // Any dynamically linked system program will do.
    let dynamic = Path::new("/bin/ls");
    let err = scratch_image::build(dynamic, "ls").await.unwrap_err();
    assert!(matches!(err, ScratchImageError::Binary { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("/bin/ls") && message.contains("dynamically linked"),
        "{message}"
    );
}
