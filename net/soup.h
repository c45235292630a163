/*
 * soup: SoupBinTCP 3.0 framing, pure functions (no I/O, no allocation, no state; any thread).
 * Spec: Nasdaq, "SoupBinTCP Version 3.00", updated February 22, 2017 (nasdaqtrader.com); field
 * layouts cross-checked with paritytrading/nassau (SoupBinTCP.java, ASCII.java). A logical packet
 * is a 2-byte big-endian length (type byte + payload), the type byte, then the payload. Alpha
 * fields are ASCII, left-justified and padded on the right with spaces (username 6, password 10);
 * the session (10) and the sequence numbers (20, decimal ASCII) are padded on the left. Login
 * Request payload: username, password, requested session, requested sequence number = 46 bytes;
 * Login Accepted: session, sequence number = 30; Login Rejected: one reason code ('A' not
 * authorized, 'S' session not available); H, Z, R, O carry nothing; S, U and '+' any bytes.
 * soup_parse() takes one packet from the front of a receive buffer and points into it (zero copy),
 * says "need more" for a partial packet so the caller keeps the tail for the next recv, and
 * rejects a bad packet as soon as the bytes present prove it bad (zero length, a length prefix
 * over the caller's max_packet, an unknown type, a fixed-size type of the wrong size), so a
 * stalled or hostile peer cannot make the caller buffer more than max_packet. How tickcore uses
 * it (push mode): `tickcore serve` LISTENS and a publisher (`tickcore feed FILE --to
 * tcp://HOST:PORT`) connects and sends a Login Request (username/password from the server's
 * config, blank session = the server's current one, sequence 0 = "tell me where to start"); the
 * server answers Login Accepted (its session and the sequence number of the NEXT message it
 * expects = messages journalled + 1) or Login Rejected; the publisher then sends Sequenced Data
 * ('S', one ITCH 5.0 message each, without the 2-byte ITCH length prefix) from that number,
 * Client Heartbeats after 1 s idle and a Logout Request at the end of its file; the server sends
 * Server Heartbeats after 1 s of silence and End of Session when it shuts down. This reverses the
 * usual direction of sequenced data (a gateway pushes into the engine) and keeps the login and
 * sequence semantics, so the publisher knows where to resume after a server restart.
 */
#ifndef TICKCORE_NET_SOUP_H
#define TICKCORE_NET_SOUP_H

#include <stddef.h>
#include <stdint.h>

#define SOUP_MAX_PACKET 65537 /* 2-byte length prefix + up to 65535 bytes (type + payload) */

enum {
    SOUP_DEBUG = '+',
    SOUP_LOGIN_ACCEPTED = 'A',
    SOUP_LOGIN_REJECTED = 'J',
    SOUP_SEQUENCED = 'S',
    SOUP_SERVER_HEARTBEAT = 'H',
    SOUP_END_OF_SESSION = 'Z',
    SOUP_LOGIN_REQUEST = 'L',
    SOUP_UNSEQUENCED = 'U',
    SOUP_CLIENT_HEARTBEAT = 'R',
    SOUP_LOGOUT_REQUEST = 'O'
};

#define SOUP_LOGIN_REQUEST_LEN  46 /* payload: username 6, password 10, session 10, sequence 20 */
#define SOUP_LOGIN_ACCEPTED_LEN 30 /* payload: session 10, sequence 20 */

/* Login Rejected reason codes. */
#define SOUP_REJECT_NOT_AUTHORIZED 'A'
#define SOUP_REJECT_NO_SESSION     'S'

typedef struct soup_packet {
    uint8_t type;
    uint16_t len;           /* payload bytes */
    const uint8_t *payload; /* points into the parsed buffer */
} soup_packet_t;

/* One packet from buf[0..n): returns the bytes it takes (> 0) and fills *p; 0 when buf holds only
 * part of a packet (need more bytes); -1 when the bytes are not a valid packet, with a message in
 * err ("length 0", "unknown packet type 0x3f", "login request payload is 12 bytes, expected 46",
 * "packet of 9000 bytes over the limit of 4096"). max_packet bounds the whole packet, prefix
 * included (a stalled or hostile client cannot make the caller hold more); fixed-size types
 * (A 30, J 1, L 46, H R Z O 0) must have exactly their size; S, U and + any size 0..max. An
 * error is reported as soon as the bytes present show it (2 bytes for the length checks, 3 for
 * the type checks), and more bytes never change a verdict: a result > 0 or -1 for buf[0..n) is
 * the same for any longer buffer with the same first n bytes. Never reads outside buf[0..n).
 * err may be NULL (errlen 0). */
int soup_parse(const uint8_t *buf, size_t n, size_t max_packet, soup_packet_t *p, char *err,
               size_t errlen);

typedef struct soup_login {
    char username[7], password[11], session[11];
    uint64_t seq;
} soup_login_t;

/* Fields with their space padding removed (username/password padded on the right, session and
 * sequence number on the left per the spec; trailing spaces after a session or sequence number
 * are tolerated too); seq 0 when blank. -1 (with err) if p is not a 46-byte login request, the
 * sequence number is not digits/spaces (digits in one run) or over UINT64_MAX, or a field holds
 * a byte outside printable ASCII (0x20..0x7e). */
int soup_login_parse(const soup_packet_t *p, soup_login_t *out, char *err, size_t errlen);
/* The same for a Login Accepted packet: session (NUL-terminated, padding removed) and the
 * sequence number of the next sequenced message. */
int soup_accepted_parse(const soup_packet_t *p, char session[11], uint64_t *seq, char *err,
                        size_t errlen);

/* Builders write one whole packet into out[0..cap) and return its size, or 0 if it does not fit
 * or a field is too long. Strings longer than their field are refused (0), shorter are padded as
 * the spec says; a NULL string is blank; a byte outside printable ASCII is refused (0), so that
 * whatever a builder writes the parsers take back. */
size_t soup_put_login(uint8_t *out, size_t cap, const char *user, const char *pass,
                      const char *session, uint64_t seq);
size_t soup_put_accepted(uint8_t *out, size_t cap, const char *session, uint64_t seq);
size_t soup_put_rejected(uint8_t *out, size_t cap, char reason);
/* Type 'S' + msg (len <= 65534; msg may be NULL when len is 0). */
size_t soup_put_sequenced(uint8_t *out, size_t cap, const uint8_t *msg, size_t len);
/* H, R, Z or O (0 for any other type). */
size_t soup_put_empty(uint8_t *out, size_t cap, uint8_t type);
/* Any packet type with a raw payload (e.g. '+' debug, 'U' unsequenced): 0 if the type is unknown,
 * a fixed-size type gets a payload of another size, or len is over 65534. */
size_t soup_put_packet(uint8_t *out, size_t cap, uint8_t type, const uint8_t *payload, size_t len);
const char *soup_type_name(uint8_t type); /* "login request", ... "unknown" */

#endif
