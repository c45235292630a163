/*
 * nats: see nats.h. The client's objects (natsConnection, jsCtx, natsSubscription, natsMsg)
 * are the client's; a consumer is a durable made through the JetStream API, a plain
 * subscription on an inbox of ours and pull requests published by nats_fetch (the client's
 * pull subscription and its batched fetch are not used: see nats_fetch); ours (nats_t,
 * nats_consumer_t with its message views and copies of the names) come from mem_alloc (tag NET) at
 * create and are freed at destroy. The acknowledgement handler and the connection callbacks run on
 * the client's threads and write only atomics and, under err_lock, the error text. A fetched
 * message's stream sequence is read from its reply subject
 * ($JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>, or the 12-token form with
 * domain and account hash) instead of natsMsg_GetMetaData, which would allocate a metadata object
 * per message.
 */
#include "net/nats.h"

#include "mem/mem.h"

#include <errno.h>
#include <mimalloc.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct nats {
    natsConnection *nc;
    natsOptions *opts;
    jsCtx *js;
    char url[NATS_URL_MAX];
    int timeout_ms, resend_after_ms;
    nats_pub_error_fn on_error;
    void *error_ctx;
    _Atomic uint64_t published, acked, duplicates, failed, resent, stalls, reconnects, last_seq;
    _Atomic uint64_t fetched, fetches, consumer_acks, pull_requests, pulls_abandoned;
    _Atomic bool need_resend; /* set by the reconnected callback or a rejected expectation */
    _Atomic uint64_t rejected;
    _Atomic int64_t give_up_at; /* nats_give_up_after: CLOCK_MONOTONIC ms, 0 = never */
    /* ordered mode: the ring of unacknowledged messages, k = 1, 2, ... in slot k % cap */
    bool ordered;
    char id_prefix[32];
    uint32_t cap;
    size_t slot_bytes;
    uint64_t next_k;       /* the next publish's number (publisher thread) */
    uint64_t floor_k;      /* the oldest unacknowledged (publisher thread) */
    uint64_t resend_floor; /* floor_k at the last resend, and how often since (a stuck stream) */
    unsigned resend_repeats;
    struct slot *slots;
    uint8_t *ring;
    pthread_mutex_t err_lock;
    char error[NATS_ERROR_MAX];
    char first_failure[NATS_ERROR_MAX]; /* the first negative acknowledgement's text */
};

struct slot {
    _Atomic uint64_t acked; /* k once message k is acknowledged */
    uint32_t len;
    char subject[NATS_NAME_MAX];
};

struct nats_consumer {
    nats_t *n;
    natsSubscription *sub; /* a plain synchronous subscription on inbox (not the client's pull
                              subscription: its _fetch is not used, see nats_fetch) */
    natsMsg **held;        /* the current batch (the client's messages), max_batch slots */
    int count;             /* messages of the current batch */
    int max_batch, max_ack_pending, ack_wait_ms;
    nats_msg_t *msgs; /* views of the current batch, max_batch of them */
    /* the one pull request that may still answer: its messages still to come at most, when it
     * was sent and its expiry (ms) */
    bool req_open;
    int req_left;
    int64_t req_sent_ms, req_expires_ms;
    uint64_t req_reconnects; /* the connection's reconnections when it was sent */
    char stream[NATS_NAME_MAX], durable[NATS_NAME_MAX], filter[NATS_NAME_MAX];
    char inbox[NATS_NAME_MAX + 32];
    char next_subject[2 * NATS_NAME_MAX + 32]; /* $JS.API.CONSUMER.MSG.NEXT.<stream>.<durable> */
    char error[NATS_ERROR_MAX];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* natsStatus -> -errno, for our callers. */
static int st_errno(natsStatus s)
{
    switch (s) {
    case NATS_OK:
        return 0;
    case NATS_NO_MEMORY:
        return -ENOMEM;
    case NATS_TIMEOUT:
        return -ETIMEDOUT;
    case NATS_NO_SERVER:
    case NATS_NO_SERVER_SUPPORT:
        return -ECONNREFUSED;
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_STALE_CONNECTION:
        return -EPIPE;
    case NATS_INVALID_ARG:
        return -EINVAL;
    case NATS_MAX_PAYLOAD:
        return -E2BIG;
    case NATS_NOT_FOUND:
        return -ENOENT;
    default:
        return -EIO;
    }
}

static void set_error(nats_t *n, const char *fmt, ...)
{
    pthread_mutex_lock(&n->err_lock);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(n->error, sizeof n->error, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&n->err_lock);
}

/* The client's own last error text (more precise than the status), or the status's text. */
static const char *st_text(natsStatus s)
{
    natsStatus ls = NATS_OK;
    const char *t = nats_GetLastError(&ls);
    return (t && *t && ls == s) ? t : natsStatus_GetText(s);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    nats_t *n = closure;
    atomic_fetch_add(&n->reconnects, 1);
    atomic_store(&n->need_resend, true);
}

/* Ordered mode: k from the message's id "<prefix>.<k>" (0: none). */
static uint64_t msg_k(const nats_t *n, natsMsg *msg)
{
    const char *id = NULL;
    if (!n->ordered || !msg || natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) != NATS_OK || !id)
        return 0;
    const char *dot = strrchr(id, '.');
    return dot ? strtoull(dot + 1, NULL, 10) : 0;
}

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    nats_t *n = closure;
    uint64_t k = msg_k(n, msg);
    if (k && pa)
        atomic_store_explicit(&n->slots[k % n->cap].acked, k, memory_order_release);
    if (pae && k && pae->ErrCode == JSStreamWrongLastMsgIDErr) {
        /* stored out of order would have been wrong: the ring sends it again after its
         * predecessor */
        atomic_fetch_add(&n->rejected, 1);
        atomic_store(&n->need_resend, true);
        natsMsg_Destroy(msg);
        return;
    }
    if (pa) {
        atomic_fetch_add(&n->acked, 1);
        if (pa->Duplicate)
            atomic_fetch_add(&n->duplicates, 1);
        uint64_t last = atomic_load(&n->last_seq);
        while (pa->Sequence > last &&
               !atomic_compare_exchange_weak(&n->last_seq, &last, pa->Sequence)) {
        }
    } else if (pae) {
        if (k) /* done, as a failure */
            atomic_store_explicit(&n->slots[k % n->cap].acked, k, memory_order_release);
        const char *subj = msg ? natsMsg_GetSubject(msg) : "?";
        const char *id = NULL;
        if (msg)
            natsMsgHeader_Get(msg, "Nats-Msg-Id", &id);
        char text[NATS_ERROR_MAX];
        snprintf(text, sizeof text, "%s: publish on subject %s (msg id %s) failed: %s (%d)", n->url,
                 subj, id ? id : "-", pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err),
                 (int)pae->ErrCode);
        pthread_mutex_lock(&n->err_lock);
        if (!n->first_failure[0])
            snprintf(n->first_failure, sizeof n->first_failure, "%s", text);
        snprintf(n->error, sizeof n->error, "%s", text);
        pthread_mutex_unlock(&n->err_lock);
        atomic_fetch_add(&n->failed, 1);
        if (n->on_error && msg)
            n->on_error(n->error_ctx, subj, natsMsg_GetData(msg),
                        (size_t)natsMsg_GetDataLength(msg), text);
    }
    natsMsg_Destroy(msg);
}

int nats_create(nats_t **out, const nats_opts_t *o, char *err, size_t errlen)
{
    *out = NULL;
    if (!o || !o->url || !*o->url || strlen(o->url) >= NATS_URL_MAX) {
        if (err)
            snprintf(err, errlen, "nats: a URL (nats://host:port, < %d bytes) is needed",
                     NATS_URL_MAX);
        return -EINVAL;
    }
    nats_t *n = mem_zalloc(MEM_TAG_NET, sizeof *n);
    if (!n) {
        if (err)
            snprintf(err, errlen, "%s: out of memory", o->url);
        return -ENOMEM;
    }
    pthread_mutex_init(&n->err_lock, NULL);
    snprintf(n->url, sizeof n->url, "%s", o->url);
    n->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
    n->resend_after_ms = o->resend_after_ms > 0 ? o->resend_after_ms : 2000;
    n->on_error = o->on_error;
    n->error_ctx = o->error_ctx;
    int max_pending = o->max_pending > 0 ? o->max_pending : 256;
    if (o->ordered) {
        n->ordered = true;
        n->cap = (uint32_t)max_pending;
        n->slot_bytes = o->max_msg_bytes > 0 ? o->max_msg_bytes : 65536;
        snprintf(n->id_prefix, sizeof n->id_prefix, "%s", o->id_prefix ? o->id_prefix : "tc");
        n->next_k = n->floor_k = 1;
        n->slots = mem_zalloc(MEM_TAG_NET, n->cap * sizeof *n->slots);
        n->ring = mem_alloc_prefault(MEM_TAG_NET, n->cap * n->slot_bytes, MEM_CACHE_LINE);
        if (!n->slots || !n->ring) {
            if (err)
                snprintf(err, errlen, "%s: out of memory for %u x %zu bytes in flight", o->url,
                         n->cap, n->slot_bytes);
            nats_destroy(n);
            return -ENOMEM;
        }
        max_pending *= 4; /* the ring bounds; the client's own count keeps lost ones a while */
    }
    natsStatus s = natsOptions_Create(&n->opts);
    if (s == NATS_OK)
        s = natsOptions_SetURL(n->opts, o->url);
    if (s == NATS_OK)
        s = natsOptions_SetName(n->opts, o->name ? o->name : "tickcore");
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(n->opts, n->timeout_ms);
    if (s == NATS_OK)
        s = natsOptions_SetAllowReconnect(n->opts, true);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(n->opts, o->max_reconnect ? o->max_reconnect : -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(n->opts,
                                         o->reconnect_wait_ms > 0 ? o->reconnect_wait_ms : 200);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(n->opts, on_reconnected, n);
    if (s == NATS_OK)
        s = natsConnection_Connect(&n->nc, n->opts);
    if (s != NATS_OK) {
        if (err)
            snprintf(err, errlen, "%s: cannot connect: %s", o->url, st_text(s));
        int e = st_errno(s);
        nats_destroy(n);
        return e == -EIO ? -ECONNREFUSED : e;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = n->timeout_ms;
    jo.PublishAsync.MaxPending = max_pending;
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = n;
    jo.PublishAsync.StallWait = 50;
    s = natsConnection_JetStream(&n->js, n->nc, &jo);
    if (s != NATS_OK) {
        if (err)
            snprintf(err, errlen, "%s: no JetStream context: %s", o->url, st_text(s));
        int e = st_errno(s);
        nats_destroy(n);
        return e;
    }
    *out = n;
    return 0;
}

void nats_destroy(nats_t *n)
{
    if (!n)
        return;
    if (n->js)
        jsCtx_Destroy(n->js);
    if (n->nc) {
        natsConnection_Close(n->nc);
        natsConnection_Destroy(n->nc);
    }
    natsOptions_Destroy(n->opts);
    if (n->slots)
        mem_free(MEM_TAG_NET, n->slots, n->cap * sizeof *n->slots);
    if (n->ring)
        mem_free(MEM_TAG_NET, n->ring, n->cap * n->slot_bytes);
    pthread_mutex_destroy(&n->err_lock);
    mem_free(MEM_TAG_NET, n, sizeof *n);
}

static void fill_info(const jsStreamInfo *si, nats_stream_info_t *info)
{
    info->msgs = si->State.Msgs;
    info->bytes = si->State.Bytes;
    info->first_seq = si->State.FirstSeq;
    info->last_seq = si->State.LastSeq;
}

int nats_stream_info(nats_t *n, const char *stream, nats_stream_info_t *info)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, n->js, stream, NULL, &jerr);
    if (s != NATS_OK) {
        set_error(n, "%s: stream %s: %s", n->url, stream,
                  s == NATS_NOT_FOUND ? "no such stream" : st_text(s));
        return st_errno(s);
    }
    if (info) {
        memset(info, 0, sizeof *info);
        fill_info(si, info);
    }
    jsStreamInfo_Destroy(si);
    return 0;
}

int nats_stream_ensure(nats_t *n, const nats_stream_cfg_t *c, nats_stream_info_t *info)
{
    int ns = 0;
    while (ns < NATS_MAX_SUBJECTS && c->subjects[ns])
        ns++;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, n->js, c->name, NULL, &jerr);
    if (s == NATS_OK) {
        for (int i = 0; i < ns; i++) {
            bool found = false;
            for (int j = 0; j < si->Config->SubjectsLen; j++)
                found |= strcmp(si->Config->Subjects[j], c->subjects[i]) == 0;
            if (!found) {
                set_error(n, "%s: stream %s exists without subject %s (it has %s%s)", n->url,
                          c->name, c->subjects[i],
                          si->Config->SubjectsLen ? si->Config->Subjects[0] : "none",
                          si->Config->SubjectsLen > 1 ? ", ..." : "");
                jsStreamInfo_Destroy(si);
                return -EEXIST;
            }
        }
        if (info) {
            memset(info, 0, sizeof *info);
            fill_info(si, info);
        }
        jsStreamInfo_Destroy(si);
        return 0;
    }
    if (s != NATS_NOT_FOUND) {
        set_error(n, "%s: stream %s: cannot read its state: %s", n->url, c->name, st_text(s));
        return st_errno(s);
    }
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = c->name;
    sc.Subjects = (const char **)c->subjects; /* the client does not write them */
    sc.SubjectsLen = ns;
    sc.Storage = c->memory ? js_MemoryStorage : js_FileStorage;
    sc.Retention = c->retention == NATS_RETAIN_INTEREST    ? js_InterestPolicy
                   : c->retention == NATS_RETAIN_WORKQUEUE ? js_WorkQueuePolicy
                                                           : js_LimitsPolicy;
    sc.MaxBytes = c->max_bytes > 0 ? c->max_bytes : -1;
    sc.MaxMsgs = c->max_msgs > 0 ? c->max_msgs : -1;
    sc.Duplicates = c->duplicate_window_ms > 0 ? c->duplicate_window_ms * 1000000 : 0;
    sc.Replicas = c->replicas > 0 ? c->replicas : 1;
    s = js_AddStream(&si, n->js, &sc, NULL, &jerr);
    if (s != NATS_OK) {
        set_error(n, "%s: stream %s (subject %s): cannot create it: %s (%d)", n->url, c->name,
                  ns ? c->subjects[0] : "-", st_text(s), (int)jerr);
        return st_errno(s);
    }
    if (info) {
        memset(info, 0, sizeof *info);
        fill_info(si, info);
        info->created = true;
    }
    jsStreamInfo_Destroy(si);
    return 0;
}

int nats_stream_read(nats_t *n, const char *stream, uint64_t seq, const char *subject, void *buf,
                     size_t cap, size_t *len, uint64_t *at)
{
    for (uint64_t q = seq; q >= 1 && seq - q < 4096; q--) {
        natsMsg *m = NULL;
        jsErrCode jerr = 0;
        natsStatus s = js_GetMsg(&m, n->js, stream, q, NULL, &jerr);
        if (s == NATS_NOT_FOUND && subject)
            continue; /* deleted or never stored */
        if (s != NATS_OK) {
            set_error(n, "%s: stream %s: message %llu: %s", n->url, stream, (unsigned long long)q,
                      st_text(s));
            return st_errno(s);
        }
        if (subject && strcmp(natsMsg_GetSubject(m), subject) != 0) {
            natsMsg_Destroy(m);
            continue;
        }
        size_t l = (size_t)natsMsg_GetDataLength(m);
        memcpy(buf, natsMsg_GetData(m), l < cap ? l : cap);
        *len = l;
        if (at)
            *at = q;
        natsMsg_Destroy(m);
        return 0;
    }
    set_error(n, "%s: stream %s: no message%s%s at or before %llu", n->url, stream,
              subject ? " on " : "", subject ? subject : "", (unsigned long long)seq);
    return -ENOENT;
}

int nats_stream_delete(nats_t *n, const char *stream)
{
    jsErrCode jerr = 0;
    natsStatus s = js_DeleteStream(n->js, stream, NULL, &jerr);
    if (s != NATS_OK) {
        set_error(n, "%s: stream %s: cannot delete it: %s", n->url, stream, st_text(s));
        return st_errno(s);
    }
    return 0;
}

void nats_give_up_after(nats_t *n, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* async-signal-safe, unlike now_ms's callers */
    int64_t at =
        (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + (timeout_ms > 0 ? timeout_ms : 0);
    if (at == 0)
        at = 1;
    int64_t cur = atomic_load(&n->give_up_at);
    while ((cur == 0 || at < cur) && !atomic_compare_exchange_weak(&n->give_up_at, &cur, at)) {
    }
}

static bool gave_up(const nats_t *n)
{
    int64_t at = atomic_load(&((nats_t *)n)->give_up_at);
    return at && now_ms() >= at;
}

bool nats_gave_up(const nats_t *n)
{
    return gave_up(n);
}

/* Publishes handed to the client and not acknowledged (nor failed) yet. */
static uint64_t unacked(nats_t *n)
{
    if (n->ordered)
        return n->next_k - n->floor_k;
    return atomic_load(&n->published) - atomic_load(&n->acked) - atomic_load(&n->failed);
}

/* Drop the client's list of publishes waiting for an acknowledgement (their acknowledgements,
 * if they come, are ignored): after a server restart some never come, and they would hold the
 * client's in-flight count up forever. Unordered mode publishes them again, in their order. */
static void take_pending(nats_t *n, bool resend)
{
    natsMsgList pending = {0};
    if (js_PublishAsyncGetPendingList(&pending, n->js) != NATS_OK)
        return;
    for (int i = 0; resend && i < pending.Count; i++) {
        natsStatus s;
        while ((s = js_PublishMsgAsync(n->js, &pending.Msgs[i], NULL)) == NATS_TIMEOUT &&
               !gave_up(n)) {
        }
        if (s == NATS_OK)
            atomic_fetch_add(&n->resent, 1);
        else
            set_error(n, "%s: publish again on subject %s failed: %s", n->url,
                      pending.Msgs[i] ? natsMsg_GetSubject(pending.Msgs[i]) : "?", st_text(s));
    }
    natsMsgList_Destroy(&pending);
}

/* Ordered: move floor_k past the acknowledged messages. */
static void advance_floor(nats_t *n)
{
    while (n->floor_k < n->next_k && atomic_load_explicit(&n->slots[n->floor_k % n->cap].acked,
                                                          memory_order_acquire) == n->floor_k)
        n->floor_k++;
}

/* Ordered: send message k (in the ring) with its id and its predecessor's. */
static natsStatus send_k(nats_t *n, uint64_t k)
{
    char id[64], prev[64];
    jsPubOptions po;
    jsPubOptions_Init(&po);
    snprintf(id, sizeof id, "%s.%llu", n->id_prefix, (unsigned long long)k);
    po.MsgId = id;
    if (k > 1) {
        snprintf(prev, sizeof prev, "%s.%llu", n->id_prefix, (unsigned long long)(k - 1));
        po.ExpectLastMsgId = prev;
    }
    const struct slot *sl = &n->slots[k % n->cap];
    natsStatus s;
    while ((s = js_PublishAsync(n->js, sl->subject, n->ring + (k % n->cap) * n->slot_bytes,
                                (int)sl->len, &po)) == NATS_TIMEOUT &&
           !gave_up(n)) {
    }
    return s;
}

/* Publish again, in order, everything not acknowledged (ordered), or the client's pending list
 * (unordered). -EIO when the stream keeps refusing the oldest message (another publisher). */
static int resend(nats_t *n)
{
    if (!n->ordered) {
        take_pending(n, true);
        return 0;
    }
    take_pending(n, false);
    advance_floor(n);
    if (n->floor_k == n->resend_floor) {
        if (++n->resend_repeats > 200) {
            set_error(n,
                      "%s: the stream keeps refusing message %s.%llu on subject %s after its "
                      "predecessor: does another publisher write to it?",
                      n->url, n->id_prefix, (unsigned long long)n->floor_k,
                      n->slots[n->floor_k % n->cap].subject);
            return -EIO;
        }
    } else {
        n->resend_floor = n->floor_k;
        n->resend_repeats = 0;
    }
    for (uint64_t k = n->floor_k; k < n->next_k; k++) {
        if (atomic_load(&n->slots[k % n->cap].acked) == k)
            continue;
        natsStatus s = send_k(n, k);
        if (s != NATS_OK)
            return 0; /* the connection went again: the next reconnect resends */
        atomic_fetch_add(&n->resent, 1);
    }
    return 0;
}

/* Wait while the connection is down; resend after a reconnect or a rejection. -EPIPE when it is
 * closed for good, -ETIMEDOUT at `until` (CLOCK_MONOTONIC ms, 0: none) or the give-up deadline. */
static int await_connection(nats_t *n, int64_t until)
{
    for (;;) {
        natsConnStatus cs = natsConnection_Status(n->nc);
        if (cs == NATS_CONN_STATUS_CLOSED) {
            set_error(n, "%s: connection closed (reconnect attempts exhausted)", n->url);
            return -EPIPE;
        }
        if (cs == NATS_CONN_STATUS_CONNECTED)
            break;
        if (gave_up(n) || (until && now_ms() >= until)) {
            set_error(n,
                      "%s: the connection is down at the %s deadline: %llu publishes not "
                      "acknowledged",
                      n->url, gave_up(n) ? "shutdown" : "flush", (unsigned long long)unacked(n));
            return -ETIMEDOUT;
        }
        sleep_ms(5);
    }
    if (atomic_exchange(&n->need_resend, false))
        return resend(n);
    return 0;
}

/* A publish that failed because the connection went (the server killed mid-write: the write of
 * the publish itself may see the broken socket first, "send error: 32", NATS_IO_ERROR): kept,
 * and sent again after the reconnect. Any other status is the publish's own error. */
static bool connection_lost(natsStatus s)
{
    return s == NATS_CONNECTION_CLOSED || s == NATS_CONNECTION_DISCONNECTED || s == NATS_IO_ERROR ||
           s == NATS_STALE_CONNECTION;
}

static int publish_ordered(nats_t *n, const char *subject, const void *data, size_t len)
{
    if (len > n->slot_bytes || strlen(subject) >= NATS_NAME_MAX) {
        set_error(n, "%s: publish on subject %s: %zu bytes pass max_msg_bytes %zu", n->url, subject,
                  len, n->slot_bytes);
        return -E2BIG;
    }
    int64_t stalled_since = 0;
    for (;;) {
        int e = await_connection(n, 0);
        if (e)
            return e;
        advance_floor(n);
        if (n->next_k - n->floor_k < n->cap)
            break;
        int64_t t = now_ms();
        if (gave_up(n)) {
            set_error(n,
                      "%s: publish on subject %s: %llu publishes still not acknowledged at "
                      "the shutdown deadline",
                      n->url, subject, (unsigned long long)unacked(n));
            return -ETIMEDOUT;
        }
        if (!stalled_since) {
            stalled_since = t;
            atomic_fetch_add(&n->stalls, 1);
        } else if (t - stalled_since > n->resend_after_ms) {
            atomic_store(&n->need_resend, true);
            stalled_since = t;
        }
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
    uint64_t k = n->next_k++;
    struct slot *sl = &n->slots[k % n->cap];
    atomic_store(&sl->acked, 0);
    sl->len = (uint32_t)len;
    memcpy(sl->subject, subject, strlen(subject) + 1);
    memcpy(n->ring + (k % n->cap) * n->slot_bytes, data, len);
    atomic_fetch_add(&n->published, 1);
    natsStatus s = send_k(n, k);
    if (s != NATS_OK && !connection_lost(s)) {
        set_error(n, "%s: publish on subject %s (msg id %s.%llu): %s", n->url, subject,
                  n->id_prefix, (unsigned long long)k, st_text(s));
        return st_errno(s);
    }
    if (s != NATS_OK)
        atomic_store(&n->need_resend, true); /* kept in the ring: sent after the reconnect */
    return 0;
}

int nats_publish(nats_t *n, const char *subject, const void *data, size_t len, const char *msg_id)
{
    int64_t maxp = natsConnection_GetMaxPayload(n->nc);
    if (maxp > 0 && len > (size_t)maxp) {
        set_error(n, "%s: publish on subject %s: %zu bytes pass the server's max payload %lld",
                  n->url, subject, len, (long long)maxp);
        return -E2BIG;
    }
    if (n->ordered)
        return publish_ordered(n, subject, data, len);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = msg_id;
    int64_t stalled_since = 0;
    for (;;) {
        int e = await_connection(n, 0);
        if (e)
            return e;
        natsStatus s = js_PublishAsync(n->js, subject, data, (int)len, &po);
        if (s == NATS_OK) {
            atomic_fetch_add(&n->published, 1);
            return 0;
        }
        if (s != NATS_TIMEOUT) {
            if (connection_lost(s))
                continue; /* await_connection decides */
            set_error(n, "%s: publish on subject %s (msg id %s): %s", n->url, subject,
                      msg_id ? msg_id : "-", st_text(s));
            return st_errno(s);
        }
        /* The in-flight bound is reached: block. Acknowledgements lost to a connection that
         * came back before we noticed it: publish the pending ones again. */
        int64_t t = now_ms();
        if (gave_up(n)) {
            set_error(n,
                      "%s: publish on subject %s (msg id %s): %llu publishes still not "
                      "acknowledged at the shutdown deadline",
                      n->url, subject, msg_id ? msg_id : "-", (unsigned long long)unacked(n));
            return -ETIMEDOUT;
        }
        if (!stalled_since) {
            stalled_since = t;
            atomic_fetch_add(&n->stalls, 1);
        } else if (t - stalled_since > n->resend_after_ms) {
            atomic_store(&n->need_resend, true);
            stalled_since = t;
        }
    }
}

/* All acknowledged (or failed)? */
static bool all_done(nats_t *n)
{
    if (n->ordered) {
        advance_floor(n);
        return n->floor_k == n->next_k;
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 20;
    return js_PublishAsyncComplete(n->js, &po) == NATS_OK;
}

int nats_publish_flush(nats_t *n, int timeout_ms)
{
    int64_t start = now_ms(), deadline = start + timeout_ms, last_progress = start;
    int64_t give_up_at = atomic_load(&n->give_up_at);
    if (give_up_at && give_up_at < deadline)
        deadline = give_up_at;
    uint64_t seen = atomic_load(&n->acked) + atomic_load(&n->failed);
    for (;;) {
        int e = await_connection(n, deadline);
        if (e)
            return e;
        if (all_done(n))
            break;
        if (n->ordered)
            sleep_ms(1);
        int64_t t = now_ms();
        if (t >= deadline) {
            set_error(n, "%s: %llu publishes not acknowledged after %lld ms", n->url,
                      (unsigned long long)unacked(n), (long long)(t - start));
            return -ETIMEDOUT;
        }
        uint64_t now_seen = atomic_load(&n->acked) + atomic_load(&n->failed);
        if (now_seen != seen) {
            seen = now_seen;
            last_progress = t;
        } else if (t - last_progress > n->resend_after_ms) {
            atomic_store(&n->need_resend, true);
            last_progress = t;
        }
    }
    if (atomic_load(&n->failed)) {
        pthread_mutex_lock(&n->err_lock);
        memcpy(n->error, n->first_failure, sizeof n->error);
        pthread_mutex_unlock(&n->err_lock);
        return -EIO;
    }
    return 0;
}

/* ---- consumers --------------------------------------------------------------------------- */

/* c's durable configuration, delivering from start_seq (0: all). */
static void durable_config(const nats_consumer_t *c, jsConsumerConfig *cc, uint64_t start_seq)
{
    jsConsumerConfig_Init(cc);
    cc->Durable = c->durable;
    cc->AckPolicy = js_AckExplicit;
    cc->DeliverPolicy = start_seq ? js_DeliverByStartSequence : js_DeliverAll;
    cc->OptStartSeq = start_seq;
    cc->MaxAckPending = c->max_ack_pending;
    cc->AckWait = (int64_t)c->ack_wait_ms * 1000000;
    cc->FilterSubject = c->filter;
    cc->MaxRequestBatch = c->max_batch;
}

/* The durable made with c's settings from start_seq; an existing one is kept as it is when
 * keep (it resumes at its acknowledgement floor). 0 or -errno. */
static int durable_add(nats_consumer_t *c, uint64_t start_seq, bool keep)
{
    nats_t *n = c->n;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = NATS_NOT_FOUND;
    if (keep)
        s = js_GetConsumerInfo(&ci, n->js, c->stream, c->durable, NULL, &jerr);
    if (s == NATS_NOT_FOUND) {
        jsConsumerConfig cc;
        durable_config(c, &cc, start_seq);
        jerr = 0;
        s = js_AddConsumer(&ci, n->js, c->stream, &cc, NULL, &jerr);
    }
    if (s != NATS_OK) {
        set_error(n, "%s: stream %s: durable consumer %s on subject %s: %s (%d)", n->url, c->stream,
                  c->durable, c->filter, st_text(s), (int)jerr);
        return st_errno(s);
    }
    jsConsumerInfo_Destroy(ci);
    return 0;
}

/* Our inbox subscription, on a new inbox: the pull requests name it as their reply subject. */
static int inbox_open(nats_consumer_t *c)
{
    nats_t *n = c->n;
    char *inbox = NULL;
    natsStatus s = natsInbox_Create(&inbox);
    if (s == NATS_OK) {
        snprintf(c->inbox, sizeof c->inbox, "%s", inbox);
        natsInbox_Destroy(inbox);
        s = natsConnection_SubscribeSync(&c->sub, n->nc, c->inbox);
    }
    /* what one request may bring, twice over (a late answer beside the next): never dropped */
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(c->sub, -1, -1);
    if (s != NATS_OK) {
        set_error(n, "%s: stream %s: durable consumer %s: cannot subscribe to its inbox: %s",
                  n->url, c->stream, c->durable, st_text(s));
        if (c->sub)
            natsSubscription_Destroy(c->sub);
        c->sub = NULL;
        return st_errno(s);
    }
    return 0;
}

/* The durable (kept if it exists, else made from start_seq) and our inbox: a plain synchronous
 * subscription that the pull requests of nats_fetch name as their reply subject. */
static int subscribe(nats_consumer_t *c, uint64_t start_seq)
{
    int rc = durable_add(c, start_seq, true);
    if (rc < 0)
        return rc;
    rc = inbox_open(c);
    if (rc < 0)
        return rc;
    snprintf(c->next_subject, sizeof c->next_subject, "$JS.API.CONSUMER.MSG.NEXT.%s.%s", c->stream,
             c->durable);
    c->req_open = false;
    return 0;
}

/* Unsubscribe and free our inbox subscription. libnats 3.4.1 does not hold a subscription while
 * its reader thread delivers a message to it (fixed upstream in nats.c v3.6.0): a message for
 * our inbox being delivered while we destroyed the subscription was a use after free (valgrind,
 * test_nats pull_consumer_resumes). Unsubscribe takes it out of the connection's table, so later
 * messages are dropped; the flush's round trip (PING, then the PONG read by the same reader
 * thread) returns only after the thread has finished any delivery it had started. Not
 * connected, no reader is delivering (and a flush would wait its whole timeout). What was
 * queued on it goes with it. */
static void inbox_close(nats_consumer_t *c)
{
    if (!c->sub)
        return;
    if (natsSubscription_Unsubscribe(c->sub) == NATS_OK &&
        natsConnection_Status(c->n->nc) == NATS_CONN_STATUS_CONNECTED)
        (void)natsConnection_FlushTimeout(c->n->nc, c->n->timeout_ms);
    natsSubscription_Destroy(c->sub);
    c->sub = NULL;
}

/* Release the current batch. */
static void release(nats_consumer_t *c)
{
    for (int i = 0; i < c->count; i++)
        natsMsg_Destroy(c->held[i]);
    c->count = 0;
}

int nats_consumer_restart(nats_consumer_t *c, uint64_t start_seq)
{
    release(c);
    /* The durable is deleted and made again from start_seq, and the pull requests get a new
     * inbox: answers to a request sent before (a fetch that returned while its request was
     * still open) are dropped with the old inbox instead of coming before start_seq's
     * (test_nats pull_consumer_resumes: message 15 where 3001 was due). */
    if (!c->sub)
        return -ENOTCONN;
    int rc = nats_consumer_delete(c->n, c->stream, c->durable);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    c->req_open = false;
    inbox_close(c);
    rc = inbox_open(c);
    if (rc < 0)
        return rc;
    return durable_add(c, start_seq, false);
}

static int consumer_open(nats_consumer_t **out, nats_t *n, const char *stream, const char *durable,
                         const char *filter, int max_batch, int max_ack_pending, int ack_wait_ms,
                         uint64_t start_seq)
{
    *out = NULL;
    if (!stream || !durable || !filter || strlen(stream) >= NATS_NAME_MAX ||
        strlen(durable) >= NATS_NAME_MAX || strlen(filter) >= NATS_NAME_MAX || max_batch <= 0 ||
        max_batch > NATS_MAX_BATCH) {
        set_error(n,
                  "%s: consumer: stream, durable and filter (< %d bytes) and a batch of 1..%d "
                  "are needed",
                  n->url, NATS_NAME_MAX, NATS_MAX_BATCH);
        return -EINVAL;
    }
    nats_consumer_t *c = mem_zalloc(MEM_TAG_NET, sizeof *c);
    nats_msg_t *msgs = mem_zalloc(MEM_TAG_NET, (size_t)max_batch * sizeof *msgs);
    natsMsg **held = mem_zalloc(MEM_TAG_NET, (size_t)max_batch * sizeof *held);
    if (!c || !msgs || !held) {
        mem_free(MEM_TAG_NET, c, sizeof *c);
        mem_free(MEM_TAG_NET, msgs, (size_t)max_batch * sizeof *msgs);
        mem_free(MEM_TAG_NET, held, (size_t)max_batch * sizeof *held);
        set_error(n, "%s: consumer %s: out of memory", n->url, durable);
        return -ENOMEM;
    }
    c->n = n;
    c->msgs = msgs;
    c->held = held;
    c->max_batch = max_batch;
    snprintf(c->stream, sizeof c->stream, "%s", stream);
    snprintf(c->durable, sizeof c->durable, "%s", durable);
    snprintf(c->filter, sizeof c->filter, "%s", filter);
    c->max_ack_pending = max_ack_pending > 0 ? max_ack_pending : 1024;
    c->ack_wait_ms = ack_wait_ms > 0 ? ack_wait_ms : 30000;
    int rc = subscribe(c, start_seq);
    if (rc < 0) {
        nats_consumer_destroy(c);
        return rc;
    }
    *out = c;
    return 0;
}

int nats_consumer_create(nats_consumer_t **out, nats_t *n, const char *stream, const char *durable,
                         const char *filter, int max_batch, int max_ack_pending, int ack_wait_ms)
{
    return consumer_open(out, n, stream, durable, filter, max_batch, max_ack_pending, ack_wait_ms,
                         0);
}

int nats_consumer_resume(nats_consumer_t **out, nats_t *n, const char *stream, const char *durable,
                         const char *filter, int max_batch, int max_ack_pending, int ack_wait_ms,
                         uint64_t *floor)
{
    *out = NULL;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    uint64_t f = 0;
    natsStatus s = js_GetConsumerInfo(&ci, n->js, stream, durable, NULL, &jerr);
    if (s == NATS_OK) {
        f = ci->AckFloor.Stream;
        jsConsumerInfo_Destroy(ci);
        int rc = nats_consumer_delete(n, stream, durable);
        if (rc < 0 && rc != -ENOENT)
            return rc;
    } else if (s != NATS_NOT_FOUND) {
        set_error(n, "%s: stream %s: consumer %s: cannot read its state: %s", n->url, stream,
                  durable, st_text(s));
        return st_errno(s);
    }
    if (floor)
        *floor = f;
    return consumer_open(out, n, stream, durable, filter, max_batch, max_ack_pending, ack_wait_ms,
                         f ? f + 1 : 0);
}

/* Acknowledge (body "+ACK") or negatively acknowledge ("-NAK {...}") message i: a publish on
 * its reply subject, as natsMsg_Ack does (which needs the client's JetStream subscription). */
static int ack_one(nats_consumer_t *c, int i, const char *body, const char *what)
{
    const char *reply = natsMsg_GetReply(c->held[i]);
    natsStatus s = reply && reply[0] ? natsConnection_PublishString(c->n->nc, reply, body)
                                     : NATS_ILLEGAL_STATE;
    if (s != NATS_OK) {
        snprintf(c->error, sizeof c->error,
                 "%s: stream %s: consumer %s: %s of stream sequence %llu: %s", c->n->url, c->stream,
                 c->durable, what, (unsigned long long)c->msgs[i].stream_seq, st_text(s));
        set_error(c->n, "%s", c->error);
        return st_errno(s);
    }
    return 0;
}

int nats_nak(nats_consumer_t *c, int from, int delay_ms)
{
    char body[64];
    if (delay_ms > 0)
        snprintf(body, sizeof body, "-NAK {\"delay\":%lld}", (long long)delay_ms * 1000000);
    else
        snprintf(body, sizeof body, "-NAK");
    for (int i = from; i < c->count; i++) {
        int rc = ack_one(c, i, body, "negative acknowledgement");
        if (rc < 0)
            return rc;
    }
    return 0;
}

void nats_consumer_destroy(nats_consumer_t *c)
{
    if (!c)
        return;
    release(c);
    /* Our inbox only: the durable stays on the server with its acknowledgement floor (what a
     * pending request still delivers to the inbox is redelivered after ack_wait). */
    inbox_close(c);
    mem_free(MEM_TAG_NET, c->msgs, (size_t)c->max_batch * sizeof *c->msgs);
    mem_free(MEM_TAG_NET, c->held, (size_t)c->max_batch * sizeof *c->held);
    mem_free(MEM_TAG_NET, c, sizeof *c);
}

int nats_consumer_delete(nats_t *n, const char *stream, const char *durable)
{
    jsErrCode jerr = 0;
    natsStatus s = js_DeleteConsumer(n->js, stream, durable, NULL, &jerr);
    if (s != NATS_OK) {
        set_error(n, "%s: stream %s: cannot delete consumer %s: %s", n->url, stream, durable,
                  st_text(s));
        return st_errno(s);
    }
    return 0;
}

/* The dot-separated token i of s as a number (0 if absent). */
static uint64_t token_u64(const char *s, int i)
{
    for (; i > 0 && s; i--) {
        s = strchr(s, '.');
        if (s)
            s++;
    }
    return s ? strtoull(s, NULL, 10) : 0;
}

static void parse_reply(const char *reply, nats_msg_t *m)
{
    m->stream_seq = m->delivered = m->pending = 0;
    if (!reply || strncmp(reply, "$JS.ACK.", 8) != 0)
        return;
    int dots = 0;
    for (const char *p = reply; *p; p++)
        dots += *p == '.';
    int base = dots + 1 >= 12 ? 6 : 4; /* v2: $JS.ACK.<domain>.<hash>.<stream>.<consumer>... */
    m->delivered = token_u64(reply, base);
    m->stream_seq = token_u64(reply, base + 1);
    m->pending = token_u64(reply, base + 4);
}

/* A pull request for batch messages, expiring after expires_ms: with no_wait the server
 * answers at once with what the durable has (up to batch) or, having none, with the first that
 * comes before the expiry; a request answered with fewer than batch ends with a status (408),
 * one answered with batch ends with its last message. */
static int pull_request(nats_consumer_t *c, int batch, int expires_ms)
{
    char body[96];
    int len = snprintf(body, sizeof body, "{\"batch\":%d,\"expires\":%lld,\"no_wait\":true}", batch,
                       (long long)expires_ms * 1000000);
    natsStatus s = natsConnection_PublishRequest(c->n->nc, c->next_subject, c->inbox, body, len);
    if (s != NATS_OK)
        return st_errno(s);
    c->req_open = true;
    c->req_left = batch;
    c->req_sent_ms = now_ms();
    c->req_expires_ms = expires_ms;
    c->req_reconnects = atomic_load(&c->n->reconnects);
    atomic_fetch_add(&c->n->pull_requests, 1);
    return 0;
}

/* The status of a message without data ("100", "404", "408", "409", "503"...), or NULL for a
 * message of the stream. */
static const char *msg_status(natsMsg *m)
{
    const char *v = NULL;
    if (natsMsg_GetDataLength(m) > 0 || natsMsgHeader_Get(m, "Status", &v) != NATS_OK)
        return NULL;
    return v;
}

/* Batched pull requests without the client's fetch. libnats 3.4.1's natsSubscription_Fetch
 * (src/js.c _fetch) first takes the messages already queued on its subscription (late answers
 * of an earlier, expired request), then asks the server for batch - taken more and loops while
 * taken != that smaller number: with more than half a batch queued it writes past its
 * batch-sized array (fixed upstream in v3.9, nats.c #749). Its fetches of one could not
 * overflow, but cost a round trip per message. Here the client is only a transport: the pull
 * requests are published on $JS.API.CONSUMER.MSG.NEXT.<stream>.<durable> with our inbox (a plain
 * synchronous subscription) as reply subject, and the answers are taken one at a time with
 * natsSubscription_NextMsg into held[], never more than max: there is no array of the client's
 * to overflow, and an answer beyond max (or late) stays queued on the subscription for the next
 * call. At most one request is open: one is sent only when the last ended (its batch delivered,
 * or its status came), was sent before a reconnection, or is past its expiry (plus
 * NATS_PULL_GRACE_MS): nats-server 2.9.10 drops an expired request without a status when a
 * message comes for it (consumer.go, nextWaiting), and an answer that still comes is welcome.
 * A call returns when it has max, when its request ended, or as soon as it has a message and
 * nothing more is queued here. */
int nats_fetch(nats_consumer_t *c, int max, int timeout_ms)
{
    release(c);
    if (max <= 0 || max > c->max_batch)
        max = c->max_batch;
    if (!c->sub)
        return -ENOTCONN;
    if (timeout_ms < 1)
        timeout_ms = 1;
    int64_t deadline = now_ms() + timeout_ms;
    int k = 0, sent = 0;
    while (k < max) {
        int64_t t = now_ms();
        if (c->req_open && (atomic_load(&c->n->reconnects) != c->req_reconnects ||
                            t > c->req_sent_ms + c->req_expires_ms + NATS_PULL_GRACE_MS)) {
            c->req_open = false; /* expired: the server may drop it silently; answers still count */
            atomic_fetch_add(&c->n->pulls_abandoned, 1);
        }
        if (!c->req_open && k > 0) /* the answer ended with a status: what we have */
            break;
        if (!c->req_open && sent < 2) { /* (two at most: then wait for late answers) */
            int rc = pull_request(c, max, timeout_ms);
            if (rc < 0) {
                snprintf(c->error, sizeof c->error,
                         "%s: stream %s: consumer %s (subject %s): pull request: %s", c->n->url,
                         c->stream, c->durable, c->filter, strerror(-rc));
                set_error(c->n, "%s", c->error);
                return rc;
            }
            sent++;
        }
        int64_t wait = deadline - t;
        natsMsg *m = NULL;
        natsStatus s = natsSubscription_NextMsg(&m, c->sub, wait > 0 ? wait : 1);
        if (s == NATS_TIMEOUT)
            break;
        if (s != NATS_OK) {
            if (k) /* what we have first: the error comes again on the next fetch */
                break;
            snprintf(c->error, sizeof c->error,
                     "%s: stream %s: consumer %s (subject %s): fetch: %s", c->n->url, c->stream,
                     c->durable, c->filter, st_text(s));
            set_error(c->n, "%s", c->error);
            return st_errno(s);
        }
        const char *status = msg_status(m);
        if (status) {
            bool hb = strncmp(status, "100", 3) == 0;
            bool empty = strncmp(status, "404", 3) == 0 || strncmp(status, "408", 3) == 0;
            if (!hb)
                c->req_open = false;
            if (!hb && !empty) { /* 409 (the durable was deleted...), 503 (no such durable) */
                const char *d = NULL;
                (void)natsMsgHeader_Get(m, "Description", &d);
                snprintf(c->error, sizeof c->error,
                         "%s: stream %s: consumer %s (subject %s): fetch: status %.3s %s",
                         c->n->url, c->stream, c->durable, c->filter, status, d ? d : "");
                natsMsg_Destroy(m);
                if (k)
                    break;
                set_error(c->n, "%s", c->error);
                return strncmp(status, "503", 3) == 0 ? -ENOENT : -EIO;
            }
            natsMsg_Destroy(m);
            continue;
        }
        if (c->req_open && --c->req_left <= 0)
            c->req_open = false; /* its whole batch: the request is over */
        nats_msg_t *v = &c->msgs[k];
        c->held[k++] = m;
        v->data = (const uint8_t *)natsMsg_GetData(m);
        v->len = (size_t)natsMsg_GetDataLength(m);
        v->subject = natsMsg_GetSubject(m);
        parse_reply(natsMsg_GetReply(m), v);
        /* nothing more queued here: return what we have. The request stays open and its next
         * answers are queued by the client's reader while the caller applies these (the next
         * call takes them): waiting for the rest of the batch instead held a shard's packets back
         * for up to the timeout while nats-server sent them one by one */
        int queued = 0;
        if (natsSubscription_GetPending(c->sub, &queued, NULL) != NATS_OK || queued == 0)
            break;
    }
    c->count = k;
    if (k) {
        atomic_fetch_add(&c->n->fetched, (uint64_t)k);
        atomic_fetch_add(&c->n->fetches, 1);
    }
    return k;
}

const nats_msg_t *nats_msg(const nats_consumer_t *c, int i)
{
    return (i >= 0 && i < c->count) ? &c->msgs[i] : NULL;
}

int nats_ack(nats_consumer_t *c, int count)
{
    if (count > c->count)
        count = c->count;
    for (int i = 0; i < count; i++) {
        int rc = ack_one(c, i, "+ACK", "acknowledge");
        if (rc < 0)
            return rc;
        atomic_fetch_add(&c->n->consumer_acks, 1);
    }
    return 0;
}

const char *nats_last_error(const nats_t *n)
{
    return n->error;
}

const char *nats_consumer_error(const nats_consumer_t *c)
{
    return c->error;
}

const char *nats_url(const nats_t *n)
{
    return n->url;
}

void nats_get_stats(const nats_t *n, nats_stats_t *o)
{
    nats_t *m = (nats_t *)n;
    o->published = atomic_load(&m->published);
    o->acked = atomic_load(&m->acked);
    o->duplicates = atomic_load(&m->duplicates);
    o->failed = atomic_load(&m->failed);
    o->resent = atomic_load(&m->resent);
    o->stalls = atomic_load(&m->stalls);
    o->reconnects = atomic_load(&m->reconnects);
    o->last_seq = atomic_load(&m->last_seq);
    o->rejected = atomic_load(&m->rejected);
    o->fetched = atomic_load(&m->fetched);
    o->fetches = atomic_load(&m->fetches);
    o->consumer_acks = atomic_load(&m->consumer_acks);
    o->pull_requests = atomic_load(&m->pull_requests);
    o->pulls_abandoned = atomic_load(&m->pulls_abandoned);
}

void nats_client_heap(nats_t *n, nats_heap_t *out)
{
    (void)n;
    size_t elapsed, utime, stime, rss, peak_rss, commit, peak_commit, faults;
    mi_process_info(&elapsed, &utime, &stime, &rss, &peak_rss, &commit, &peak_commit, &faults);
    out->commit_bytes = commit;
    out->peak_commit_bytes = peak_commit;
}

bool nats_connected(const nats_t *n)
{
    return natsConnection_Status(n->nc) == NATS_CONN_STATUS_CONNECTED;
}
