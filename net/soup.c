/*
 * soup: SoupBinTCP 3.0 framing (see soup.h for the packet layouts, the spec reference and how
 * tickcore uses the protocol in push mode). Everything here is a pure function of its arguments:
 * parsing points into the caller's buffer and checks the length prefix, then the type byte, as
 * soon as they are present; the field parsers copy the padded ASCII fields into small fixed
 * arrays; the builders format numbers by hand. Nothing allocates and nothing keeps state, so any
 * thread may call anything; error messages are written with err_set only on the error path.
 */
#include "net/soup.h"

#include "base/byteorder.h"
#include "base/err.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define SOUP_VARIABLE (-1)
#define SOUP_UNKNOWN  (-2)

/* Payload size of a type: >= 0 fixed, SOUP_VARIABLE, or SOUP_UNKNOWN. */
static int type_len(uint8_t type)
{
    switch (type) {
    case SOUP_DEBUG:
    case SOUP_SEQUENCED:
    case SOUP_UNSEQUENCED:
        return SOUP_VARIABLE;
    case SOUP_LOGIN_ACCEPTED:
        return SOUP_LOGIN_ACCEPTED_LEN;
    case SOUP_LOGIN_REJECTED:
        return 1;
    case SOUP_LOGIN_REQUEST:
        return SOUP_LOGIN_REQUEST_LEN;
    case SOUP_SERVER_HEARTBEAT:
    case SOUP_END_OF_SESSION:
    case SOUP_CLIENT_HEARTBEAT:
    case SOUP_LOGOUT_REQUEST:
        return 0;
    default:
        return SOUP_UNKNOWN;
    }
}

const char *soup_type_name(uint8_t type)
{
    switch (type) {
    case SOUP_DEBUG:
        return "debug";
    case SOUP_LOGIN_ACCEPTED:
        return "login accepted";
    case SOUP_LOGIN_REJECTED:
        return "login rejected";
    case SOUP_SEQUENCED:
        return "sequenced data";
    case SOUP_SERVER_HEARTBEAT:
        return "server heartbeat";
    case SOUP_END_OF_SESSION:
        return "end of session";
    case SOUP_LOGIN_REQUEST:
        return "login request";
    case SOUP_UNSEQUENCED:
        return "unsequenced data";
    case SOUP_CLIENT_HEARTBEAT:
        return "client heartbeat";
    case SOUP_LOGOUT_REQUEST:
        return "logout request";
    default:
        return "unknown";
    }
}

int soup_parse(const uint8_t *buf, size_t n, size_t max_packet, soup_packet_t *p, char *err,
               size_t errlen)
{
    if (n < 2)
        return 0;
    const size_t body = be16_get(buf); /* type byte + payload */
    if (body == 0) {
        err_set(err, errlen, "length 0");
        return -1;
    }
    if (body + 2 > max_packet) {
        err_set(err, errlen, "packet of %zu bytes over the limit of %zu", body + 2, max_packet);
        return -1;
    }
    if (n < 3)
        return 0;
    const uint8_t type = buf[2];
    const int want = type_len(type);
    if (want == SOUP_UNKNOWN) {
        err_set(err, errlen, "unknown packet type 0x%02x", type);
        return -1;
    }
    if (want >= 0 && body - 1 != (size_t)want) {
        err_set(err, errlen, "%s payload is %zu bytes, expected %d", soup_type_name(type), body - 1,
                want);
        return -1;
    }
    if (n < body + 2)
        return 0;
    p->type = type;
    p->len = (uint16_t)(body - 1);
    p->payload = buf + 3;
    return (int)(body + 2);
}

/* ---- field parsing ---------------------------------------------------------------------- */

/* Copy an alpha field without its space padding (leading spaces too when trim_left, trailing
 * always) into out (w + 1 bytes, NUL-terminated). -1 with err on a byte outside 0x20..0x7e. */
static int get_alpha(const uint8_t *f, size_t w, bool trim_left, char *out, const char *name,
                     char *err, size_t errlen)
{
    for (size_t i = 0; i < w; i++) {
        if (f[i] < 0x20 || f[i] > 0x7e) {
            err_set(err, errlen, "%s byte %zu is 0x%02x, not printable ASCII", name, i, f[i]);
            return -1;
        }
    }
    size_t a = 0, b = w;
    while (b > 0 && f[b - 1] == ' ')
        b--;
    while (trim_left && a < b && f[a] == ' ')
        a++;
    memcpy(out, f + a, b - a);
    out[b - a] = '\0';
    return 0;
}

/* A 20-byte sequence number: spaces, one run of digits, spaces; all blank is 0. */
static int get_seq(const uint8_t *f, uint64_t *seq, char *err, size_t errlen)
{
    size_t i = 0;
    uint64_t v = 0;
    while (i < 20 && f[i] == ' ')
        i++;
    for (; i < 20 && f[i] >= '0' && f[i] <= '9'; i++) {
        const unsigned d = f[i] - '0';
        if (v > (UINT64_MAX - d) / 10) {
            err_set(err, errlen, "sequence number over %llu", (unsigned long long)UINT64_MAX);
            return -1;
        }
        v = v * 10 + d;
    }
    while (i < 20 && f[i] == ' ')
        i++;
    if (i < 20) {
        err_set(err, errlen, "sequence number byte %zu is 0x%02x, not a digit or space", i, f[i]);
        return -1;
    }
    *seq = v;
    return 0;
}

static int check_type(const soup_packet_t *p, uint8_t type, size_t len, char *err, size_t errlen)
{
    if (p->type == type && p->len == len)
        return 0;
    err_set(err, errlen, "%s packet of %u payload bytes is not a %zu-byte %s",
            soup_type_name(p->type), (unsigned)p->len, len, soup_type_name(type));
    return -1;
}

int soup_login_parse(const soup_packet_t *p, soup_login_t *out, char *err, size_t errlen)
{
    if (check_type(p, SOUP_LOGIN_REQUEST, SOUP_LOGIN_REQUEST_LEN, err, errlen) < 0)
        return -1;
    const uint8_t *f = p->payload;
    if (get_alpha(f, 6, false, out->username, "username", err, errlen) < 0 ||
        get_alpha(f + 6, 10, false, out->password, "password", err, errlen) < 0 ||
        get_alpha(f + 16, 10, true, out->session, "session", err, errlen) < 0 ||
        get_seq(f + 26, &out->seq, err, errlen) < 0)
        return -1;
    return 0;
}

int soup_accepted_parse(const soup_packet_t *p, char session[11], uint64_t *seq, char *err,
                        size_t errlen)
{
    if (check_type(p, SOUP_LOGIN_ACCEPTED, SOUP_LOGIN_ACCEPTED_LEN, err, errlen) < 0)
        return -1;
    if (get_alpha(p->payload, 10, true, session, "session", err, errlen) < 0 ||
        get_seq(p->payload + 10, seq, err, errlen) < 0)
        return -1;
    return 0;
}

/* ---- builders --------------------------------------------------------------------------- */

static void put_header(uint8_t *out, uint8_t type, size_t payload)
{
    be16_put(out, (uint16_t)(payload + 1));
    out[2] = type;
}

/* Length of s if it fits w bytes and is printable ASCII, else -1. NULL is "". */
static int field_len(const char *s, size_t w)
{
    if (!s)
        return 0;
    size_t k = 0;
    for (; s[k]; k++)
        if (k == w || (uint8_t)s[k] < 0x20 || (uint8_t)s[k] > 0x7e)
            return -1;
    return (int)k;
}

static void put_alpha(uint8_t *f, size_t w, const char *s, size_t k, bool right)
{
    memset(f, ' ', w);
    if (k)
        memcpy(right ? f + w - k : f, s, k);
}

static void put_seq(uint8_t *f, uint64_t v)
{
    memset(f, ' ', 20);
    size_t i = 20;
    do {
        f[--i] = (uint8_t)('0' + v % 10);
        v /= 10;
    } while (v);
}

size_t soup_put_login(uint8_t *out, size_t cap, const char *user, const char *pass,
                      const char *session, uint64_t seq)
{
    const size_t size = 3 + SOUP_LOGIN_REQUEST_LEN;
    const int ku = field_len(user, 6), kp = field_len(pass, 10), ks = field_len(session, 10);
    if (cap < size || ku < 0 || kp < 0 || ks < 0)
        return 0;
    put_header(out, SOUP_LOGIN_REQUEST, SOUP_LOGIN_REQUEST_LEN);
    put_alpha(out + 3, 6, user, (size_t)ku, false);
    put_alpha(out + 9, 10, pass, (size_t)kp, false);
    put_alpha(out + 19, 10, session, (size_t)ks, true);
    put_seq(out + 29, seq);
    return size;
}

size_t soup_put_accepted(uint8_t *out, size_t cap, const char *session, uint64_t seq)
{
    const size_t size = 3 + SOUP_LOGIN_ACCEPTED_LEN;
    const int ks = field_len(session, 10);
    if (cap < size || ks < 0)
        return 0;
    put_header(out, SOUP_LOGIN_ACCEPTED, SOUP_LOGIN_ACCEPTED_LEN);
    put_alpha(out + 3, 10, session, (size_t)ks, true);
    put_seq(out + 13, seq);
    return size;
}

size_t soup_put_packet(uint8_t *out, size_t cap, uint8_t type, const uint8_t *payload, size_t len)
{
    const int want = type_len(type);
    if (want == SOUP_UNKNOWN || (want >= 0 && len != (size_t)want) || len > 65534 || cap < 3 + len)
        return 0;
    put_header(out, type, len);
    if (len)
        memcpy(out + 3, payload, len);
    return 3 + len;
}

size_t soup_put_rejected(uint8_t *out, size_t cap, char reason)
{
    const uint8_t r = (uint8_t)reason;
    return soup_put_packet(out, cap, SOUP_LOGIN_REJECTED, &r, 1);
}

size_t soup_put_sequenced(uint8_t *out, size_t cap, const uint8_t *msg, size_t len)
{
    return soup_put_packet(out, cap, SOUP_SEQUENCED, msg, len);
}

size_t soup_put_empty(uint8_t *out, size_t cap, uint8_t type)
{
    if (type_len(type) != 0)
        return 0;
    return soup_put_packet(out, cap, type, NULL, 0);
}
