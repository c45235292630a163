/*
 * symtab: the symbol table shared by every decoder and every analytics module. A symbol is
 * named by its stock locate (uint16_t, ITCH's own index), so the hot path goes from an event to
 * its symbol by direct indexing, with no hashing. The reverse lookup, symbol -> locate, used by
 * CSV interning and by queries, is an open-addressing table keyed by XXH3 of the symbol.
 *
 * ITCH's stock directory (R) assigns locates: symtab_set(). CSV symbols are interned:
 * symtab_intern() returns the symbol's locate, giving the next free one to a new symbol, up to
 * the capacity fixed at init; past it the call fails with -ENOSPC and the table counts it.
 * Everything is allocated by symtab_init (tag INGEST); nothing afterwards. One thread writes
 * (the ingest thread); readers on other threads read names of locates already published.
 */
#ifndef TICKCORE_EVENT_SYMTAB_H
#define TICKCORE_EVENT_SYMTAB_H

#include <stddef.h>
#include <stdint.h>

#define SYMTAB_MAX_SYMBOLS 65535u /* locates 1..65535; 0 means "no symbol" */
#define SYMTAB_SYM_MAX     8      /* ITCH symbols are 8 bytes, space padded */

typedef struct symtab {
    char (*names)[SYMTAB_SYM_MAX + 1]; /* [65536], NUL-terminated, "" when unset */
    uint16_t *slots;                   /* hash slots: a locate, 0 = empty */
    uint32_t slot_mask;
    uint32_t capacity; /* most symbols the table will hold */
    uint32_t count;
    uint32_t next_locate; /* interning: the next locate to try */
    uint64_t full;        /* symbols refused because the table was full */
    uint64_t conflicts;   /* symtab_set of a locate that already held another symbol */
} symtab_t;

/* capacity: 1..SYMTAB_MAX_SYMBOLS. 0 or -errno. */
int symtab_init(symtab_t *t, uint32_t capacity);
void symtab_fini(symtab_t *t);
/* Forget every symbol (a new trading day); allocates nothing. */
void symtab_clear(symtab_t *t);

/* ITCH stock directory: locate -> symbol. Trailing spaces are dropped. 0 ok, -EINVAL (locate 0,
 * empty or over-long symbol), -ENOSPC (full), -EEXIST (the locate already names another
 * symbol, or the symbol already has another locate: counted in conflicts, table unchanged). */
int symtab_set(symtab_t *t, uint16_t locate, const char *sym, size_t len);
/* Locate of sym, adding it with a new locate if unknown. >0 locate, -EINVAL, -ENOSPC. */
int symtab_intern(symtab_t *t, const char *sym, size_t len);
/* Locate of sym, or 0 if unknown. Trailing spaces are ignored. */
uint16_t symtab_find(const symtab_t *t, const char *sym, size_t len);
/* NUL-terminated name of a locate, "" if it names nothing. */
static inline const char *symtab_name(const symtab_t *t, uint16_t locate)
{
    return t->names[locate];
}
static inline uint32_t symtab_count(const symtab_t *t)
{
    return t->count;
}

#endif
