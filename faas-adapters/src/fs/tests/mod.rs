//! Tests of the `files` store, by concern: the Go layouts, atomic writes,
//! locks, collections and the data directory; the helpers they share and
//! the `SourceStore` contract here.

use std::collections::BTreeMap;

use faas_ports::Language;

use super::*;

mod atomic_writes;
mod collections;
mod data_dir;
mod go_layouts;
mod legacy_paths;
mod locking;

fn cp(raw: &str) -> CollectionPath {
    CollectionPath::parse(raw).unwrap()
}

fn name(raw: &str) -> FunctionName {
    FunctionName::parse(raw).unwrap()
}

fn new_version(collection: &str, fname: &str, source: &str, env: &[(&str, &str)]) -> NewVersion {
    let map: BTreeMap<String, String> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    NewVersion {
        collection_path: cp(collection),
        name: name(fname),
        language: Language::Javascript,
        source_code: source.to_owned(),
        env: EnvMap::parse(map).unwrap(),
    }
}

fn store() -> (tempfile::TempDir, FsSourceStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = FsSourceStore::new(dir.path().join("data")).unwrap();
    (dir, store)
}

fn write(path: &Path, content: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

/// Every file below `dir`, relative to it, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_source_store_contract() {
    let (_dir, store) = store();
    crate::testkit::source_store_contract(&store).await;
}

fn env(pairs: &[(&str, &str)]) -> EnvMap {
    EnvMap::parse(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    )
    .unwrap()
}

/// The lock files below the data directory, relative to it.
fn lock_files(data: &Path) -> Vec<String> {
    tree(data).into_iter().filter(|f| f.ends_with(".lock")).collect()
}
