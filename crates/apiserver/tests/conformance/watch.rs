//! Watches: event streams, resumption, `410 Gone`, bookmarks and timeouts, streaming lists, slow
//! watchers, and kube-runtime's `Controller` on top.

use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, Patch, WatchEvent, WatchParams};
use kube::runtime::{Controller, controller::Action, watcher};
use serde_json::json;

#[tokio::test]
async fn watch_streams_changes_and_resumes() {
    let env = env("watch").await;
    let leases: Api<Lease> = env.api();
    let l = create(&leases, &lease("a")).await;
    let rv = l.metadata.resource_version.clone().unwrap();
    let mut stream = leases
        .watch(&WatchParams::default().labels("app=a"), &rv)
        .await
        .unwrap()
        .boxed();
    send_patch(
        &leases,
        "a",
        Patch::Merge(json!({"spec": {"holderIdentity": "b"}})),
    )
    .await
    .unwrap();
    create(&leases, &lease("b")).await;
    // Leaving the selection is a DELETED for this watcher.
    send_patch(
        &leases,
        "b",
        Patch::Merge(json!({"metadata": {"labels": {"app": "z"}}})),
    )
    .await
    .unwrap();
    leases.delete("a", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let ev = tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("event in time")
            .expect("stream open")
            .unwrap();
        match ev {
            WatchEvent::Added(o) => seen.push(format!("ADDED {}", o.metadata.name.unwrap())),
            WatchEvent::Modified(o) => seen.push(format!("MODIFIED {}", o.metadata.name.unwrap())),
            WatchEvent::Deleted(o) => seen.push(format!("DELETED {}", o.metadata.name.unwrap())),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(
        seen,
        vec!["MODIFIED a", "ADDED b", "DELETED b", "DELETED a"]
    );
    // Resuming from the first version replays the same history.
    let mut again = leases
        .watch(&WatchParams::default().labels("app=a"), &rv)
        .await
        .unwrap()
        .boxed();
    let first = tokio::time::timeout(WAIT, again.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(first, WatchEvent::Modified(_)));
    env.cleanup().await;
}

/// A watch resuming from a version hundreds of changes back gets exactly the events (types and
/// whole objects, managedFields included) a watch open at the time got, selectors applied to
/// each version as it was. (The embedded server keeps older log entries serialized.)
#[tokio::test]
async fn a_watch_resuming_far_back_replays_every_change_as_it_was() {
    let env = env("watch-far").await;
    let leases: Api<Lease> = env.api();
    let l = create(&leases, &lease("a")).await;
    let rv = l.metadata.resource_version.clone().unwrap();
    let open = |labels: &'static str| {
        let leases = leases.clone();
        let rv = rv.clone();
        async move {
            let params = WatchParams::default().labels(labels);
            leases.watch(&params, &rv).await.unwrap().boxed()
        }
    };
    let mut live_all = open("").await;
    let mut live_a = open("app=a").await;
    create(&leases, &lease("b")).await;
    // b leaves app=a, then comes back; a is deleted.
    for app in ["z", "a"] {
        let labels = json!({"metadata": {"labels": {"app": app}}});
        send_patch(&leases, "b", Patch::Merge(labels))
            .await
            .unwrap();
    }
    leases.delete("a", &DeleteParams::default()).await.unwrap();
    let mut filler = lease("filler");
    filler.metadata.labels = Some([("app".to_string(), "other".to_string())].into());
    create(&leases, &filler).await;
    for i in 0..600 {
        let spec = json!({"spec": {"leaseDurationSeconds": i + 1}});
        send_patch(&leases, "filler", Patch::Merge(spec))
            .await
            .unwrap();
    }
    async fn take(
        s: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<Lease>>> + Unpin),
        n: usize,
    ) -> Vec<String> {
        let mut out = Vec::new();
        while out.len() < n {
            let ev = tokio::time::timeout(WAIT, s.next())
                .await
                .expect("event in time")
                .expect("stream open")
                .unwrap();
            let (t, o) = match ev {
                WatchEvent::Added(o) => ("ADDED", o),
                WatchEvent::Modified(o) => ("MODIFIED", o),
                WatchEvent::Deleted(o) => ("DELETED", o),
                WatchEvent::Bookmark(_) => continue,
                WatchEvent::Error(e) => panic!("{e:?}"),
            };
            out.push(format!("{t} {}", serde_json::to_string(&o).unwrap()));
        }
        out
    }
    // b created, out, in, a deleted, filler created and 600 patches.
    let all = take(&mut live_all, 605).await;
    let only_a = take(&mut live_a, 4).await;
    let kinds: Vec<&str> = only_a.iter().map(|l| &l[..l.find(' ').unwrap()]).collect();
    assert_eq!(kinds, ["ADDED", "DELETED", "ADDED", "DELETED"]);
    assert_eq!(take(&mut open("").await, 605).await, all);
    assert_eq!(take(&mut open("app=a").await, 4).await, only_a);
    env.cleanup().await;
}

/// Each event is `{"type":...,"object":...}` with `type` first, as Go writes `metav1.WatchEvent`:
/// clients that decode the object while reading it (serde's tagged enums) rely on the order.
#[tokio::test]
async fn watch_events_name_their_type_before_the_object() {
    let env = env("watch-order").await;
    let leases: Api<Lease> = env.api();
    create(&leases, &lease("a")).await;
    let uri = format!(
        "/apis/coordination.k8s.io/v1/namespaces/{}/leases?watch=true&resourceVersion=0&timeoutSeconds=1",
        env.ns
    );
    let req = http::Request::builder()
        .uri(uri)
        .body(kube::client::Body::empty())
        .unwrap();
    let resp = env.client.send(req).await.unwrap();
    let body = resp.into_body().collect_bytes().await.unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    let first = text.lines().next().expect("an event");
    assert!(
        first.starts_with(r#"{"type":"ADDED","object":{"#),
        "{first}"
    );
    env.cleanup().await;
}

#[tokio::test]
async fn watch_too_old_resource_version_is_410() {
    let Some(_) = (real_cluster().is_none()).then_some(()) else {
        eprintln!("skipped on a real cluster: needs a small event history");
        return;
    };
    let server = embedded_apiserver::ApiServer::with_options(
        Arc::new(gamedeploy_clock::SystemClock),
        embedded_apiserver::ServerOptions {
            seed: 1,
            event_history: 3,
            ..Default::default()
        },
    );
    let client = server.client_as("conformance");
    let leases: Api<Lease> = Api::namespaced(client, "default");
    let l = create(&leases, &lease("a")).await;
    let rv = l.metadata.resource_version.clone().unwrap();
    for i in 0..5 {
        send_patch(
            &leases,
            "a",
            Patch::Merge(json!({"spec": {"leaseDurationSeconds": i + 1}})),
        )
        .await
        .unwrap();
    }
    let mut s = leases
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    match tokio::time::timeout(WAIT, s.next()).await.unwrap().unwrap() {
        Ok(WatchEvent::Error(e)) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
            assert!(
                e.message.starts_with("too old resource version"),
                "{}",
                e.message
            );
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn watch_timeout_and_bookmarks_on_virtual_time() {
    if real_cluster().is_some() {
        eprintln!("skipped on a real cluster: uses virtual time");
        return;
    }
    let clock = Arc::new(gamedeploy_clock::TokioClock::starting_at(
        "2026-01-01T00:00:00Z".parse().unwrap(),
    ));
    let env = env_with_clock("timeout", clock).await;
    let leases: Api<Lease> = env.api();
    let l = create(&leases, &lease("a")).await;
    assert_eq!(
        l.metadata.creation_timestamp.unwrap().0.to_string(),
        "2026-01-01T00:00:00Z",
        "timestamps come from the clock"
    );
    let rv = l.metadata.resource_version.unwrap();
    let mut s = leases
        .watch(&WatchParams::default().timeout(150), &rv)
        .await
        .unwrap()
        .boxed();
    let mut bookmarks = 0;
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(1000), s.next())
        .await
        .expect("server closes the watch by itself")
    {
        if let Ok(WatchEvent::Bookmark(b)) = ev {
            assert!(!b.metadata.resource_version.is_empty());
            bookmarks += 1;
        }
    }
    assert!(bookmarks >= 1, "bookmarks every minute when asked");
    env.cleanup().await;
}

/// Collect a watch's BOOKMARKs (kind and resourceVersion) and its other events until the
/// server ends it.
async fn bookmarks_until_the_end(
    leases: &Api<Lease>,
    wp: &WatchParams,
    rv: &str,
) -> (Vec<(String, String)>, usize) {
    let mut s = leases.watch(wp, rv).await.unwrap().boxed();
    let (mut bookmarks, mut others) = (Vec::new(), 0);
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(1000), s.next())
        .await
        .expect("the server ends the watch at its timeout")
    {
        match ev {
            Ok(WatchEvent::Bookmark(b)) => {
                bookmarks.push((b.types.kind, b.metadata.resource_version))
            }
            Ok(_) => others += 1,
            Err(e) => panic!("watch error: {e}"),
        }
    }
    (bookmarks, others)
}

/// kube-apiserver's cacher sends a bookmark 2 s before a watch's deadline (and every minute),
/// so a client that asked for them resumes after a timeout without relisting; one that did not
/// ask gets none.
#[tokio::test]
async fn a_watch_gets_a_bookmark_shortly_before_its_timeout() {
    let env = env("bookmark-timeout").await;
    let leases: Api<Lease> = env.api();
    let l = create(&leases, &lease("a")).await;
    let rv = l.metadata.resource_version.unwrap();
    let (bookmarks, others) =
        bookmarks_until_the_end(&leases, &WatchParams::default().timeout(4), &rv).await;
    assert_eq!(others, 0);
    assert!(!bookmarks.is_empty(), "a BOOKMARK before the timeout");
    for (kind, brv) in &bookmarks {
        assert_eq!(kind, "Lease");
        assert!(brv.parse::<u64>().unwrap() >= rv.parse::<u64>().unwrap());
    }
    let (bookmarks, _) = bookmarks_until_the_end(
        &leases,
        &WatchParams::default().timeout(4).disable_bookmarks(),
        &rv,
    )
    .await;
    assert!(bookmarks.is_empty(), "not asked for: {bookmarks:?}");
    env.cleanup().await;
}

/// On virtual time: one bookmark a minute, one 2 s before the deadline, in order, carrying
/// the newest resourceVersion delivered; none without `allowWatchBookmarks`.
#[tokio::test(start_paused = true)]
async fn bookmarks_come_every_minute_and_before_the_timeout_on_virtual_time() {
    if real_cluster().is_some() {
        eprintln!("skipped on a real cluster: uses virtual time");
        return;
    }
    let clock = Arc::new(gamedeploy_clock::TokioClock::starting_at(
        "2026-01-01T00:00:00Z".parse().unwrap(),
    ));
    let env = env_with_clock("bookmark-minute", clock).await;
    let leases: Api<Lease> = env.api();
    let rv = create(&leases, &lease("a"))
        .await
        .metadata
        .resource_version
        .unwrap();
    let start = tokio::time::Instant::now();
    let (bookmarks, _) =
        bookmarks_until_the_end(&leases, &WatchParams::default().timeout(150), &rv).await;
    // At ~60 s, ~120 s and ~148 s.
    assert_eq!(bookmarks.len(), 3, "{bookmarks:?}");
    assert!(bookmarks.iter().all(|(k, r)| k == "Lease" && *r == rv));
    assert!(start.elapsed() >= Duration::from_secs(150));
    // A 1 s watch ends before a bookmark could come 2 s ahead of it.
    let (bookmarks, _) =
        bookmarks_until_the_end(&leases, &WatchParams::default().timeout(1), &rv).await;
    assert!(bookmarks.is_empty(), "{bookmarks:?}");
    let (bookmarks, _) = bookmarks_until_the_end(
        &leases,
        &WatchParams::default().timeout(150).disable_bookmarks(),
        &rv,
    )
    .await;
    assert!(bookmarks.is_empty(), "{bookmarks:?}");
    env.cleanup().await;
}

#[tokio::test]
async fn streaming_list_watch_sends_initial_events() {
    let env = env("streaming").await;
    let leases: Api<Lease> = env.api();
    create(&leases, &lease("pre")).await;
    let cfg = watcher::Config::default().streaming_lists();
    let mut w = watcher(leases.clone(), cfg).boxed();
    let mut saw_init_done = false;
    let mut saw_pre = false;
    while !saw_init_done {
        match tokio::time::timeout(WAIT, w.try_next())
            .await
            .unwrap()
            .unwrap()
        {
            Some(watcher::Event::InitApply(o)) if o.metadata.name.as_deref() == Some("pre") => {
                saw_pre = true
            }
            Some(watcher::Event::InitDone) => saw_init_done = true,
            _ => {}
        }
    }
    assert!(saw_pre);
    create(&leases, &lease("post")).await;
    loop {
        if let Some(watcher::Event::Apply(o)) = tokio::time::timeout(WAIT, w.try_next())
            .await
            .unwrap()
            .unwrap()
            && o.metadata.name.as_deref() == Some("post")
        {
            break;
        }
    }
    env.cleanup().await;
}

/// A watcher that never reads is closed once it falls `watch_backlog` events behind, and the
/// server drops what it queued for it, as kube-apiserver's cacher terminates a watcher whose
/// buffer is full; a watcher that keeps reading gets every event. Embedded server only.
#[tokio::test]
async fn watch_that_falls_behind_is_closed() {
    if real_cluster().is_some() {
        eprintln!("skipped on a real cluster: watch buffers are not observable there");
        return;
    }
    let server = embedded_apiserver::ApiServer::with_options(
        Arc::new(gamedeploy_clock::SystemClock),
        embedded_apiserver::ServerOptions {
            watch_backlog: 32,
            ..Default::default()
        },
    );
    let client = server.client_as("conformance");
    let leases: Api<Lease> = Api::namespaced(client, "default");
    let mut slow = leases
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    let fast = leases
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    const N: usize = 300;
    let reader = tokio::spawn(async move {
        let mut fast = fast;
        let mut added = 0;
        while added < N {
            match tokio::time::timeout(WAIT, fast.next()).await {
                Ok(Some(Ok(WatchEvent::Added(_)))) => added += 1,
                Ok(Some(Ok(_))) => {}
                other => panic!("the reading watcher lost its stream after {added}: {other:?}"),
            }
        }
        (added, fast)
    });
    assert_eq!(server.watch_stats().open, 2);
    for i in 0..N {
        create(&leases, &lease(&format!("l{i}"))).await;
    }
    let (added, _fast) = reader.await.unwrap();
    assert_eq!(added, N, "the reading watcher saw every event");
    let stats = server.watch_stats();
    assert_eq!(stats.closed_lagging, 1, "{stats:?}");
    assert_eq!(stats.open, 1, "only the reading watcher is left: {stats:?}");
    assert!(stats.queued <= 32, "{stats:?}");
    // The lagging watcher's stream ends after what was already on its wire.
    let mut delivered = 0;
    loop {
        match tokio::time::timeout(WAIT, slow.next())
            .await
            .expect("stream ends")
        {
            Some(Ok(_)) => delivered += 1,
            Some(Err(e)) => panic!("{e}"),
            None => break,
        }
    }
    assert!(
        delivered < N,
        "the lagging watcher was closed early ({delivered})"
    );
}

#[tokio::test]
async fn controller_reconciles_objects_created_after_start() {
    let env = env("controller").await;
    let leases: Api<Lease> = env.api();
    create(&leases, &lease("before")).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    #[derive(Debug, thiserror::Error)]
    #[error("never")]
    struct Never;
    let ctl = Controller::new(leases.clone(), watcher::Config::default())
        .run(
            |l: Arc<Lease>, tx: Arc<tokio::sync::mpsc::UnboundedSender<String>>| async move {
                let _ = tx.send(l.metadata.name.clone().unwrap_or_default());
                Ok::<_, Never>(Action::await_change())
            },
            |_, _, _| Action::await_change(),
            Arc::new(tx),
        )
        .for_each(|_| async {});
    let handle = tokio::spawn(ctl);
    let mut seen = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut created_after = false;
    while !seen.contains("after") {
        if seen.contains("before") && !created_after {
            create(&leases, &lease("after")).await;
            created_after = true;
        }
        let name = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("reconcile in time")
            .unwrap();
        seen.insert(name);
    }
    handle.abort();
    env.cleanup().await;
}
