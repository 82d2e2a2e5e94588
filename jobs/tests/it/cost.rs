//! What one create job costs the database: the claim and the record, one transaction each,
//! counted with diesel's instrumentation on the worker's own pool. Run with `--nocapture` to
//! see the figures.

use std::time::Duration;

use diesel_mangopay::{DatabaseUrl, Db};
use diesel_mangopay_jobs::JobQueue;

use crate::both_backends;
use crate::common::{idle, options, saved_user, start_worker_with};
use crate::support::{Env, client_config};

both_backends!(a_create_job_costs_two_transactions, |env: Env| async move {
    let queue = JobQueue::connect(&env.database.url).await.unwrap();
    let user = saved_user(&env, "counted@example.com").await;
    queue.create_mangopay_user(user.id.unwrap()).await.unwrap();
    // The worker gets a pool of its own: only its statements are counted.
    let worker_db = Db::connect(&env.database.url).await.unwrap();
    // The job's own statements: without a rate budget, which on PostgreSQL adds one visit to
    // the shared budget (one transaction) per batch of calls.
    let client = diesel_mangopay::MangopayClient::new(
        client_config(&env.sandbox)
            .rate_budget(diesel_mangopay::client::RateBudget::unlimited())
            .build()
            .unwrap(),
    )
    .unwrap();
    client
        .list("users", diesel_mangopay::client::PageRequest::default())
        .await
        .unwrap();
    let before = worker_db.statements();
    let worker = start_worker_with(worker_db.clone(), client, &queue, options());
    env.until_synced(user.id.unwrap(), Duration::from_secs(30))
        .await;
    idle(&queue).await;
    worker.stop().await;
    let cost = worker_db.statements() - before;
    let backend = match env.database.url {
        DatabaseUrl::Postgres(_) => "PostgreSQL",
        DatabaseUrl::Sqlite(_) => "SQLite",
    };
    println!(
        "create job on {backend}: {} transactions, {} statements (diesel; the job storage's own \
         statements are apalis's, not counted here)",
        cost.transactions, cost.statements
    );
    assert_eq!(
        cost.transactions, 2,
        "one to claim, one to record: {cost:?}"
    );
    assert!(
        cost.statements <= 5,
        "claim: UPDATE + SELECT; record: UPDATE + the user's two tables: {cost:?}"
    );
});
