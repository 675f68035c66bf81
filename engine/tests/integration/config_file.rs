//! The shipped `config.toml` is the documentation of every key's default;
//! this keeps it true.

use rpcsupport::config::parse_section;

const SHIPPED: &str = include_str!("../../../config.toml");

/// Each section of the shipped config.toml parses and equals the defaults
/// of its process.
#[test]
fn shipped_config_holds_the_defaults() {
    let engine: engine::EngineConfig = parse_section(SHIPPED, "engine").unwrap();
    assert_eq!(engine, engine::EngineConfig::default());
    let worker: worker::WorkerConfig = parse_section(SHIPPED, "worker").unwrap();
    assert_eq!(worker, worker::WorkerConfig::default());
    let itemsaver: itemsaver::ItemsaverConfig = parse_section(SHIPPED, "itemsaver").unwrap();
    assert_eq!(itemsaver, itemsaver::ItemsaverConfig::default());
}

/// Every key of the engine and worker sections is written out in the
/// shipped file, so none goes undocumented (`engine.hosts`, empty by
/// default, is shown as a commented example).
#[test]
fn shipped_config_lists_every_key() {
    let file: toml::Table = toml::from_str(SHIPPED).unwrap();
    let keys = |t: toml::Table| {
        let mut k: Vec<String> = t.keys().cloned().collect();
        k.sort();
        k
    };
    let mut engine_keys = keys(toml::Table::try_from(engine::EngineConfig::default()).unwrap());
    engine_keys.retain(|k| k != "hosts");
    assert_eq!(
        keys(file["engine"].as_table().unwrap().clone()),
        engine_keys
    );
    let worker_keys = keys(toml::Table::try_from(worker::WorkerConfig::default()).unwrap());
    assert_eq!(
        keys(file["worker"].as_table().unwrap().clone()),
        worker_keys
    );
}
