//! The app-level socket rules of SPEC §7: listener registration semantics,
//! one app socket (supersede), and the limit of 5 SocketTasks.

use std::sync::{Arc, Mutex};

use mpnet_core::ws::app::{Phase, Previous, SlotKind, SocketSlots, MAX_SOCKET_TASKS};
use mpnet_core::ws::listeners::{
    CloseListener, Listeners, MessageListener, OpenListener, SocketListeners,
};
use mpnet_core::ws::{MessageData, SocketEvent};
use mpnet_core::{Api, Error, ErrorKind};

type Log = Arc<Mutex<Vec<String>>>;

fn recorder(log: &Log, name: &str) -> Arc<OpenListener> {
    let log = log.clone();
    let name = name.to_string();
    Arc::new(move || log.lock().unwrap().push(name.clone()))
}

fn fire(listeners: &SocketListeners, log: &Log) -> Vec<String> {
    log.lock().unwrap().clear();
    listeners.clone().dispatch(&SocketEvent::Open);
    log.lock().unwrap().clone()
}

#[test]
fn listeners_run_in_order_duplicates_twice_off_removes_all_of_one() {
    let log: Log = Arc::default();
    let a = recorder(&log, "a");
    let b = recorder(&log, "b");
    let mut l = SocketListeners::default();
    l.open.on(a.clone());
    l.open.on(b.clone());
    l.open.on(a.clone());
    assert_eq!(fire(&l, &log), ["a", "b", "a"]);
    // A different closure with the same behaviour is a different callback.
    let a_twin = recorder(&log, "a");
    assert_eq!(l.open.off(&a_twin), 0);
    assert_eq!(l.open.off(&a), 2);
    assert_eq!(fire(&l, &log), ["b"]);
    l.open.on(a.clone());
    assert_eq!(fire(&l, &log), ["b", "a"]);
    l.open.off_all();
    assert!(l.open.is_empty());
    assert!(fire(&l, &log).is_empty());
}

#[test]
fn each_event_goes_to_its_own_list() {
    let log: Log = Arc::default();
    let mut l = SocketListeners::default();
    l.open.on(recorder(&log, "open"));
    let m = log.clone();
    let on_message: Arc<MessageListener> = Arc::new(move |d: &MessageData| {
        m.lock()
            .unwrap()
            .push(format!("message {}", serde_json::to_string(d).unwrap()))
    });
    l.message.on(on_message);
    let e = log.clone();
    l.error.on(Arc::new(move |err: &Error| {
        e.lock()
            .unwrap()
            .push(format!("error {}", err.code(Api::Socket)))
    }));
    let c = log.clone();
    let on_close: Arc<CloseListener> = Arc::new(move |code: u16, reason: &str| {
        c.lock().unwrap().push(format!("close {code} {reason}"))
    });
    l.close.on(on_close);
    for event in [
        SocketEvent::Open,
        SocketEvent::Message {
            data: MessageData::Text("hi".into()),
        },
        SocketEvent::Error(Error::new(ErrorKind::MessageTooLarge, "big")),
        SocketEvent::Close {
            code: 1009,
            reason: "message too large".into(),
        },
    ] {
        l.dispatch(&event);
    }
    assert_eq!(
        *log.lock().unwrap(),
        [
            "open",
            r#"message {"data":"hi","isBuffer":false}"#,
            "error 12",
            "close 1009 message too large",
        ]
    );
}

#[test]
fn a_listener_may_remove_itself_while_running_from_a_snapshot() {
    let list: Arc<Mutex<Listeners<OpenListener>>> = Arc::default();
    let count = Arc::new(Mutex::new(0));
    let slot: Arc<Mutex<Option<Arc<OpenListener>>>> = Arc::default();
    let (l2, c2, s2) = (list.clone(), count.clone(), slot.clone());
    let once: Arc<OpenListener> = Arc::new(move || {
        *c2.lock().unwrap() += 1;
        if let Some(me) = s2.lock().unwrap().as_ref() {
            l2.lock().unwrap().off(me);
        }
    });
    *slot.lock().unwrap() = Some(once.clone());
    list.lock().unwrap().on(once);
    for _ in 0..3 {
        let snapshot = list.lock().unwrap().snapshot();
        snapshot.iter().for_each(|cb| cb());
    }
    assert_eq!(*count.lock().unwrap(), 1);
}

#[test]
fn a_new_connect_replaces_the_app_socket() {
    let mut slots = SocketSlots::new();
    let first = slots.connect(false).unwrap();
    assert_eq!((first.kind, first.previous), (SlotKind::App, None));
    // Still connecting: superseded, that connect fails with 2.
    let second = slots.connect(false).unwrap();
    assert_eq!(second.previous, Some(Previous::FailConnect(first.id)));
    let err = slots.opened(first.id).unwrap_err();
    assert_eq!(
        (err.kind(), err.code(Api::Socket)),
        (ErrorKind::Superseded, 2)
    );
    slots.finished(first.id); // ignored: no longer tracked
    assert_eq!(slots.app_socket(), Some((second.id, Phase::Connecting)));
    // Open: closed first (close event 1000), then the new one connects.
    slots.opened(second.id).unwrap();
    assert_eq!(slots.phase(second.id), Some((SlotKind::App, Phase::Open)));
    let third = slots.connect(false).unwrap();
    assert_eq!(third.previous, Some(Previous::Close(second.id)));
    slots.finished(second.id); // its background close ends later: no effect
    assert_eq!(slots.app_socket(), Some((third.id, Phase::Connecting)));
    // Closing counts as existing.
    slots.opened(third.id).unwrap();
    slots.closing(third.id);
    let fourth = slots.connect(false).unwrap();
    assert_eq!(fourth.previous, Some(Previous::Close(third.id)));
    // Gone: nothing to replace.
    slots.finished(fourth.id);
    assert_eq!(slots.app_socket(), None);
    assert_eq!(slots.connect(false).unwrap().previous, None);
}

#[test]
fn at_most_five_tasks_open_or_connecting() {
    let mut slots = SocketSlots::new();
    let app = slots.connect(false).unwrap();
    let tasks: Vec<_> = (0..MAX_SOCKET_TASKS)
        .map(|_| slots.connect(true).unwrap())
        .collect();
    assert!(tasks
        .iter()
        .all(|t| t.kind == SlotKind::Task && t.previous.is_none()));
    let err = slots.connect(true).unwrap_err();
    assert_eq!(
        (err.kind(), err.code(Api::Socket)),
        (ErrorKind::TooManySockets, 2)
    );
    assert!(err.message().contains("too many sockets"));
    // The app socket is not a task and is not limited by them.
    let app2 = slots.connect(false).unwrap();
    assert_eq!(app2.previous, Some(Previous::FailConnect(app.id)));
    // Tasks never supersede each other; opened tasks still count.
    slots.opened(tasks[0].id).unwrap();
    assert_eq!(slots.active_tasks(), 5);
    // A closing task frees its place; a finished one too.
    slots.closing(tasks[0].id);
    let sixth = slots.connect(true).unwrap();
    assert!(slots.connect(true).is_err());
    slots.finished(tasks[1].id);
    let _seventh = slots.connect(true).unwrap();
    assert_eq!(slots.active_tasks(), 5);
    assert_eq!(
        slots.phase(tasks[0].id),
        Some((SlotKind::Task, Phase::Closing))
    );
    assert_eq!(
        slots.phase(sixth.id),
        Some((SlotKind::Task, Phase::Connecting))
    );
    slots.finished(tasks[0].id);
    assert_eq!(slots.phase(tasks[0].id), None);
    // Ids are never reused.
    let mut ids: Vec<u64> = tasks.iter().map(|t| t.id.get()).collect();
    ids.extend([app.id.get(), app2.id.get(), sixth.id.get()]);
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), MAX_SOCKET_TASKS + 3);
}

#[test]
fn shared_listeners_on_and_off() {
    use mpnet_core::ws::listeners::{MessageListener, SharedListeners};
    use mpnet_core::ws::{MessageData, SocketEvent};
    use std::sync::{Arc, Mutex};
    let seen = Arc::new(Mutex::new(0));
    let s = seen.clone();
    let cb: Arc<MessageListener> = Arc::new(move |_: &MessageData| *s.lock().unwrap() += 1);
    let shared = SharedListeners::default();
    shared.on_message(cb.clone());
    shared.on_message(cb.clone());
    let hit = || {
        shared.snapshot().dispatch(&SocketEvent::Message {
            data: MessageData::Text("x".into()),
        })
    };
    hit();
    assert_eq!(*seen.lock().unwrap(), 2, "registered twice, called twice");
    shared.off_message(Some(&cb));
    hit();
    assert_eq!(
        *seen.lock().unwrap(),
        2,
        "off(cb) removes every registration"
    );
    shared.on_message(cb.clone());
    shared.off_message(None);
    hit();
    assert_eq!(*seen.lock().unwrap(), 2, "off() removes all");
}

#[test]
fn a_snapshot_is_shared_and_keeps_the_lists_it_was_taken_from() {
    use mpnet_core::ws::listeners::{MessageListener, SharedListeners};
    use std::sync::Arc;
    let cb: Arc<MessageListener> = Arc::new(|_| {});
    let shared = SharedListeners::default();
    shared.on_message(cb.clone());
    let before = shared.snapshot();
    // No change in between: the same lists, not a copy.
    let again = shared.snapshot();
    assert!(Arc::ptr_eq(&before, &again));
    drop(again);
    // A change while a snapshot is held copies the lists first.
    shared.on_message(cb.clone());
    shared.off_open(None);
    assert_eq!(before.message.len(), 1, "the snapshot as it was");
    assert_eq!(shared.snapshot().message.len(), 2);
    drop(before);
    shared.off_message(Some(&cb));
    assert_eq!(shared.snapshot().message.len(), 0);
}
