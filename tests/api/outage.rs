//! The service and a PostgreSQL server that is down: at start (the service
//! waits, retrying), and later (503, then back to 200 without a restart).
//! Needs the PostgreSQL server binaries that `scripts/test-postgres.sh`
//! exports as TEST_PG_BIN; the SQLite run has no server to stop.

use std::process::Command;

use super::helpers::{run_cli, ServiceProcess};

/// A private cluster, so stopping it disturbs no other test.
struct Cluster {
    bin: String,
    data: std::path::PathBuf,
    port: u16,
    run_as_postgres: bool,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn create(bin: String) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let run_as_postgres = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
        if run_as_postgres {
            assert!(Command::new("chown")
                .args(["postgres"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Cluster {
            bin,
            data: dir.path().join("data"),
            port,
            run_as_postgres,
            _dir: dir,
        };
        cluster.pg("initdb", &["-U", "postgres", "--auth=trust", "-E", "UTF8"]);
        cluster
    }

    fn pg(&self, tool: &str, args: &[&str]) {
        let program = format!("{}/{tool}", self.bin);
        let mut command = if self.run_as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", &program]);
            c
        } else {
            Command::new(&program)
        };
        let output = command
            .arg("-D")
            .arg(&self.data)
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{tool} {args:?}: {output:?}");
    }

    fn start(&self) {
        let socket_dir = self.data.parent().unwrap().display().to_string();
        let options = format!(
            "-p {} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port
        );
        let log = self
            .data
            .parent()
            .unwrap()
            .join("server.log")
            .display()
            .to_string();
        self.pg("pg_ctl", &["-w", "-l", &log, "-o", &options, "start"]);
    }

    fn stop(&self) {
        self.pg("pg_ctl", &["-w", "-m", "fast", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(format!("{}/pg_ctl", self.bin))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .output();
        if self.run_as_postgres {
            let _ = Command::new("runuser")
                .args([
                    "-u",
                    "postgres",
                    "--",
                    &format!("{}/pg_ctl", self.bin),
                    "-m",
                    "immediate",
                    "stop",
                    "-D",
                ])
                .arg(&self.data)
                .output();
        }
    }
}

#[tokio::test]
async fn service_waits_for_postgres_and_recovers_from_its_restart() {
    let Ok(bin) = std::env::var("TEST_PG_BIN") else {
        eprintln!(
            "not run: needs PostgreSQL server binaries (scripts/test-postgres.sh sets TEST_PG_BIN)"
        );
        return;
    };
    let cluster = Cluster::create(bin);

    // The database is down at start: the service waits and retries.
    let mut service = ServiceProcess::start(
        &cluster.url(),
        &[("DB_STARTUP_TIMEOUT", "120"), ("DB_CONNECT_TIMEOUT", "2")],
    );
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(
        service.is_running(),
        "the service exited instead of waiting for the database"
    );
    cluster.start();
    service.wait_for_health(200).await;
    run_cli(&cluster.url(), &["org", "create", "acme", "Acme"]);
    let token = run_cli(
        &cluster.url(),
        &["key", "create", "--org", "acme", "--role", "admin"],
    );
    let client = reqwest::Client::new();
    let list = || {
        client
            .get(format!("{}/api/v1/touchpoints", service.api))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(list().await.unwrap().status(), 200);

    // The database goes away: 503, never 500, and no crash.
    cluster.stop();
    service.wait_for_health(503).await;
    let during = list().await.unwrap();
    assert_eq!(during.status(), 503);
    let body: serde_json::Value = during.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");

    // It comes back: so does the service, without a restart.
    cluster.start();
    service.wait_for_health(200).await;
    assert_eq!(list().await.unwrap().status(), 200);
    assert!(service.is_running());
}
