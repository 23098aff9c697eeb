//! The loopback fault proxy in front of a real Postgres: it forwards, a Reset cut breaks live
//! and new connections at once, restore brings new connections back, and a Blackhole makes
//! clients time out instead of failing.

use std::time::Duration;

use harness::service::postgres::{Database, PostgresServer};
use harness::service::proxy::{Fault, FaultProxy, ProxyMode};
use harness::timeouts;
use sqlx::{Connection, PgConnection};

/// A short client-side bound for the blackhole checks: long enough for loopback Postgres to
/// answer many times over, short enough to keep the test quick.
const CLIENT_TIMEOUT: Duration = Duration::from_millis(500);

async fn connect_via(db: &Database, proxy: &FaultProxy) -> Result<PgConnection, sqlx::Error> {
    let addr = proxy.addr();
    PgConnection::connect_with(&db.connect_options().host(&addr.ip().to_string()).port(addr.port())).await
}

async fn select_1(conn: &mut PgConnection) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("SELECT 1").fetch_one(conn).await
}

#[tokio::test]
async fn forwards_queries_to_postgres() {
    let server = PostgresServer::start().await.unwrap();
    let db = server.fresh_database().await.unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    assert_ne!(proxy.addr(), server.addr());
    assert!(proxy.addr().ip().is_loopback());

    let mut conn = PgConnection::connect(&db.url_via(proxy.addr())).await.unwrap();
    assert_eq!(select_1(&mut conn).await.unwrap(), 1);
    let state = proxy.state();
    assert_eq!(state.mode, ProxyMode::Forwarding);
    assert_eq!((state.accepted, state.forwarded, state.live), (1, 1, 1));
    conn.close().await.unwrap();

    drop(proxy);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn reset_breaks_live_and_new_connections_until_restored() {
    let server = PostgresServer::start().await.unwrap();
    let db = server.fresh_database().await.unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let mut existing = connect_via(&db, &proxy).await.unwrap();
    assert_eq!(select_1(&mut existing).await.unwrap(), 1);

    proxy.cut(Fault::Reset);
    assert_eq!(proxy.state().mode, ProxyMode::Cut(Fault::Reset));

    let err = tokio::time::timeout(timeouts::HTTP_REQUEST, select_1(&mut existing))
        .await
        .expect("a query on a reset connection hung instead of failing")
        .unwrap_err();
    eprintln!("proxy: existing connection after Reset: {err}");

    let err = tokio::time::timeout(timeouts::HTTP_REQUEST, connect_via(&db, &proxy))
        .await
        .expect("connecting through a reset proxy hung instead of failing")
        .unwrap_err();
    eprintln!("proxy: new connection after Reset: {err}");

    let state = proxy.state();
    assert_eq!(state.refused, 1, "{state:?}");
    assert_eq!(state.reset, 1, "{state:?}");

    // The database itself was never touched: a direct connection still works.
    let mut direct = db.connect().await.unwrap();
    assert_eq!(select_1(&mut direct).await.unwrap(), 1);
    direct.close().await.unwrap();

    proxy.restore();
    assert_eq!(proxy.state().mode, ProxyMode::Forwarding);
    let mut again = connect_via(&db, &proxy).await.unwrap();
    assert_eq!(select_1(&mut again).await.unwrap(), 1);
    again.close().await.unwrap();

    drop(proxy);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn blackhole_makes_clients_time_out_and_restore_heals() {
    let server = PostgresServer::start().await.unwrap();
    let db = server.fresh_database().await.unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let mut existing = connect_via(&db, &proxy).await.unwrap();
    assert_eq!(select_1(&mut existing).await.unwrap(), 1);

    proxy.cut(Fault::Blackhole);

    let connect = tokio::time::timeout(CLIENT_TIMEOUT, connect_via(&db, &proxy)).await;
    assert!(
        connect.is_err(),
        "connect through a blackhole did not time out: {:?}",
        connect.map(|r| r.is_ok())
    );

    // A query on a live connection goes unanswered; cancel it and the connection with it.
    let query = tokio::time::timeout(CLIENT_TIMEOUT, select_1(&mut existing)).await;
    assert!(query.is_err(), "a query through a blackhole did not time out");
    drop(existing);

    let state = proxy.state();
    assert_eq!(state.mode, ProxyMode::Cut(Fault::Blackhole));
    assert_eq!(state.blackholed, 1, "{state:?}");

    proxy.restore();
    let mut again = tokio::time::timeout(timeouts::HTTP_REQUEST, connect_via(&db, &proxy))
        .await
        .expect("connect after restore hung")
        .unwrap();
    assert_eq!(select_1(&mut again).await.unwrap(), 1);
    again.close().await.unwrap();

    drop(proxy);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn dropping_the_proxy_closes_its_connections() {
    let server = PostgresServer::start().await.unwrap();
    let db = server.fresh_database().await.unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let addr = proxy.addr();
    let mut conn = connect_via(&db, &proxy).await.unwrap();
    assert_eq!(select_1(&mut conn).await.unwrap(), 1);

    drop(proxy);

    let err = tokio::time::timeout(timeouts::HTTP_REQUEST, select_1(&mut conn))
        .await
        .expect("a query through a dropped proxy hung")
        .unwrap_err();
    eprintln!("proxy: connection after the proxy was dropped: {err}");
    let refused = tokio::time::timeout(timeouts::HTTP_REQUEST, tokio::net::TcpStream::connect(addr))
        .await
        .expect("connect to a dropped proxy hung");
    assert!(
        refused.is_err(),
        "the dropped proxy still accepts connections on {addr}"
    );

    server.stop().await.unwrap();
}
