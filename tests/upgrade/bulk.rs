//! Megabytes through a tunnel whose client reads late: writes the kernel takes in part
//! (the send buffers fill both ways) continue where they stopped, under both drivers.

use super::*;

#[test]
fn megabytes_each_way_arrive_whole_and_in_order_when_the_client_reads_late() {
    let (tx, _rx) = std::sync::mpsc::channel();
    let backend = foo_backend(tx);
    let sent: Vec<u8> = noise(16 << 20).to_ascii_lowercase().into_bytes();
    for driver in DRIVERS {
        let dir = temp_dir("ws-bulk");
        let cfg = config(
            &backend.to_string(),
            free_port(),
            &dir.join("a.log"),
            Some("{ protocols: [foo] }"),
            "",
        );
        let p = Portico::start(&cfg, driver);
        let (mut s, mut rest) = open_foo_tunnel(&p, driver);
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut w = s.try_clone().unwrap();
        let out = sent.clone();
        let writer = thread::spawn(move || w.write_all(&out).unwrap());
        // Nothing is read for a while: the backend's answers back up into Portico.
        thread::sleep(Duration::from_millis(300));
        let got = read_exactly(&mut s, &mut rest, sent.len());
        writer.join().unwrap();
        assert!(
            got == sent.to_ascii_uppercase(),
            "{driver}: bytes lost, doubled or out of order"
        );
        p.stop();
    }
}
