//! HTTP/1.1 codec. parse/body/encode do no IO and are tested by feeding bytes split
//! at every boundary; conn.rs drives them over a monoio stream.
