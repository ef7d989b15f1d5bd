//! The real binary given a journal file that is not a whole Triagem journal:
//! it stops at start-up, says why and what to do, and leaves the file as it was.

use std::time::Duration;

use crate::crash::Server;
use crate::helpers::default_config_path;

#[tokio::test]
async fn start_up_stops_with_a_clear_message_on_a_file_that_is_not_a_journal() {
    let dir = tempfile::Builder::new()
        .prefix("triagem-notours-")
        .tempdir()
        .unwrap();
    let config = dir.path().join("triagem.toml");
    std::fs::copy(default_config_path(), &config).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let journal = data.join("triagem.sqlite3");
    let text = "protocolo;nome;cor\n20260000000000001;Ana;verde\n".repeat(20);
    std::fs::write(&journal, &text).unwrap();

    let mut server = Server::start(dir.path(), &config, 1);
    let status = server
        .exit_status(Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("still running:\n{}", server.log()));
    assert!(!status.success(), "exit status {status}");
    let log = server.log();
    assert!(
        log.contains("is not a Triagem journal") && log.contains("not an SQLite database"),
        "{log}"
    );
    assert!(log.contains("Nothing was written to it"), "{log}");
    assert_eq!(std::fs::read_to_string(&journal).unwrap(), text);
}
