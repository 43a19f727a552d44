//! Section 8: the store's key-value build over Redis on loopback (a
//! standalone server and a three-master cluster, started here), beside the
//! directory build on the same run's directories: the session cycle's time,
//! then its round trips to Redis per step, counted by the embedding
//! library's `wasi:keyvalue` host (deterministic, unlike the times).

use std::path::PathBuf;

use sqlite_sessions_host::keyvalue::{Buckets, RedisOptions, Traffic};
use sqlite_sessions_host::{Config, Request, Runtime, RuntimeOptions, SessionStorage};
use test_servers::{RedisCluster, RedisServer};

use crate::cycle::{one_wasm_cycle, run_cycle, run_variant_list, CycleFn, Step};
use crate::setup::{bench_config, seed_session, SEED};
use crate::MAX_INSTANCES;

/// The bucket the bench's key-value store opens.
pub const BUCKET: &str = "default";

/// The Redis servers of sections 8 and 9, stopped when dropped.
pub struct Servers {
    pub redis: RedisServer,
    pub cluster: RedisCluster,
}

impl Servers {
    /// A redis-server and a three-master cluster on loopback ports.
    pub fn start() -> anyhow::Result<Servers> {
        Ok(Servers {
            redis: RedisServer::start()?,
            cluster: RedisCluster::start()?,
        })
    }

    /// The bucket on the standalone server, its keys under `prefix`.
    pub fn redis_buckets(&self, prefix: &str) -> anyhow::Result<Buckets> {
        Ok(Buckets::builder()
            .redis(BUCKET, &self.redis.url(), &options(prefix))?
            .build())
    }

    /// The bucket on the cluster, its keys under `prefix`.
    pub fn cluster_buckets(&self, prefix: &str) -> anyhow::Result<Buckets> {
        let urls = self.cluster.urls();
        let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
        Ok(Buckets::builder()
            .redis_cluster(BUCKET, &nodes, &options(prefix))?
            .build())
    }
}

fn options(prefix: &str) -> RedisOptions {
    RedisOptions {
        key_prefix: prefix.to_owned(),
        ..RedisOptions::default()
    }
}

/// The bench's store settings for the key-value build: the bucket instead
/// of the directory.
pub fn kv_config() -> Config {
    let mut config = bench_config();
    config.directory = BUCKET.to_owned();
    config
}

/// The key-value build, pre-initialised, host calls not counted (as the
/// directory rows' stock runtime).
pub fn kv_runtime() -> anyhow::Result<Runtime> {
    let component = sqlite_sessions_artifacts::store_kv()?;
    Runtime::from_file_with(
        component,
        RuntimeOptions {
            count_host_calls: false,
            max_instances: MAX_INSTANCES,
            ..RuntimeOptions::cached_beside(component)
        },
    )
}

/// Section 8.
pub fn kv_bench(
    stock: &Runtime,
    dirs: &[PathBuf],
    servers: &Servers,
    iters: usize,
) -> anyhow::Result<()> {
    let kv = kv_runtime()?;
    let dir_config = bench_config();
    let kv_config = kv_config();
    let redis: SessionStorage = servers.redis_buckets("bench-cycle:")?.into();
    let cluster: SessionStorage = servers.cluster_buckets("bench-cycle:")?.into();

    let mut dir_rows = Vec::new();
    for base in dirs {
        let dir = tempfile::tempdir_in(base)?;
        let id = seed_session(stock, dir.path())?;
        dir_rows.push((base.clone(), dir, id));
    }
    let redis_id = kv.create_session(&redis, Default::default(), &kv_config, SEED)?;
    let cluster_id = kv.create_session(&cluster, Default::default(), &kv_config, SEED)?;

    println!(
        "key-value backend: the session cycle (load existing + get + set) over Redis on \
         loopback, beside the directory build; {iters} iterations per row"
    );
    println!(
        "{:<40} {:>10} {:>10} {:>10}",
        "workload", "mean µs", "p50 µs", "p95 µs"
    );
    let (kv, dir_config, kv_config) = (&kv, &dir_config, &kv_config);
    let mut variants: Vec<(String, CycleFn)> = Vec::new();
    for (base, dir, id) in &dir_rows {
        let storage = SessionStorage::from(dir.path());
        variants.push((
            format!("wasm dir   {}", base.display()),
            Box::new(move |i| one_wasm_cycle(stock, &storage, dir_config, id, i)),
        ));
    }
    let (redis_ref, cluster_ref) = (&redis, &cluster);
    let (redis_id, cluster_id) = (&redis_id, &cluster_id);
    variants.push((
        format!("wasm redis {}", servers.redis.addr()),
        Box::new(move |i| one_wasm_cycle(kv, redis_ref, kv_config, redis_id, i)),
    ));
    variants.push((
        "wasm redis cluster, 3 masters".to_owned(),
        Box::new(move |i| one_wasm_cycle(kv, cluster_ref, kv_config, cluster_id, i)),
    ));
    let stats = run_variant_list(variants, iters)?;
    if let [first, .., redis_row, cluster_row] = &stats[..] {
        redis_row
            .ratio_to(first)
            .print_ratio("ratio redis / first directory");
        cluster_row
            .ratio_to(first)
            .print_ratio("ratio cluster / first directory");
    }

    println!();
    println!("round trips to Redis per step of the cycle (connections opened in brackets)");
    println!("{:<28} {:>14} {:>14}", "step", "redis", "cluster");
    let redis_steps = round_trips(kv, &redis, kv_config, redis_id)?;
    let cluster_steps = round_trips(kv, &cluster, kv_config, cluster_id)?;
    for (step, (r, c)) in Step::ALL.iter().zip(redis_steps.iter().zip(&cluster_steps)) {
        println!(
            "{:<28} {:>14} {:>14}",
            step.label(),
            format_traffic(r),
            format_traffic(c)
        );
    }
    let total = |steps: &[Traffic]| Traffic {
        round_trips: steps.iter().map(|t| t.round_trips).sum(),
        connects: steps.iter().map(|t| t.connects).sum(),
    };
    println!(
        "{:<28} {:>14} {:>14}",
        "cycle",
        format_traffic(&total(&redis_steps)),
        format_traffic(&total(&cluster_steps))
    );
    let new_session = |storage: &SessionStorage| -> anyhow::Result<Traffic> {
        let create = || -> anyhow::Result<Traffic> {
            let mut req = kv.request(storage)?;
            let store = req.open_store(kv_config)??;
            let s = req.store(&store).create()?;
            req.session(&s).set_json("counter", "1")??;
            req.drop_session(s)?;
            req.drop_store(store)?;
            Ok(req.keyvalue_traffic())
        };
        // New keys land on any master: warm every master's script cache
        // first, as a running server has.
        for _ in 0..16 {
            create()?;
        }
        create()
    };
    println!(
        "{:<28} {:>14} {:>14}",
        "new session: create + set",
        format_traffic(&new_session(&redis)?),
        format_traffic(&new_session(&cluster)?)
    );
    Ok(())
}

fn format_traffic(t: &Traffic) -> String {
    if t.connects == 0 {
        t.round_trips.to_string()
    } else {
        format!("{} ({})", t.round_trips, t.connects)
    }
}

/// The round trips (and connections) of each step of one warm cycle: the
/// connection pool and the server's script cache are filled by a first
/// cycle, as in a running server.
fn round_trips(
    runtime: &Runtime,
    storage: &SessionStorage,
    config: &Config,
    id: &str,
) -> anyhow::Result<Vec<Traffic>> {
    for warm in 0..2 {
        run_cycle(
            || runtime.request(storage),
            |req| runtime.finish(req),
            config,
            id,
            &warm.to_string(),
            |_, _| {},
        )?;
    }
    let mut steps = Vec::new();
    let mut last = Traffic::default();
    run_cycle(
        || runtime.request(storage),
        |req| runtime.finish(req),
        config,
        id,
        "2",
        |req: Option<&mut Request>, _| {
            // The instance is gone after teardown: its traffic ended at the
            // previous step.
            let now = req.map_or(last, |r| r.keyvalue_traffic());
            steps.push(Traffic {
                round_trips: now.round_trips - last.round_trips,
                connects: now.connects - last.connects,
            });
            last = now;
        },
    )?;
    Ok(steps)
}
