/*
 * symtab: see symtab.h. The names array is indexed by locate (65,536 x 9 bytes, 576 KiB,
 * allocated once); the hash slots number the next power of two at or above twice the capacity,
 * so probing stays short. Keys are compared by name through the locate stored in the slot.
 */
#include "event/symtab.h"

#include "mem/mem.h"

#include <errno.h>
#include <string.h>
#include <xxhash.h>

#define NAMES_N (SYMTAB_MAX_SYMBOLS + 1u)

static size_t trim(const char *sym, size_t len)
{
    while (len > 0 && (sym[len - 1] == ' ' || sym[len - 1] == '\0'))
        len--;
    return len;
}

int symtab_init(symtab_t *t, uint32_t capacity)
{
    memset(t, 0, sizeof *t);
    if (capacity == 0 || capacity > SYMTAB_MAX_SYMBOLS)
        return -EINVAL;
    uint32_t slots = 16;
    while (slots < 2 * capacity)
        slots <<= 1;
    t->names = mem_zalloc(MEM_TAG_INGEST, NAMES_N * sizeof *t->names);
    t->slots = mem_calloc(MEM_TAG_INGEST, slots, sizeof *t->slots);
    if (!t->names || !t->slots) {
        symtab_fini(t);
        return -ENOMEM;
    }
    t->slot_mask = slots - 1;
    t->capacity = capacity;
    t->next_locate = 1;
    return 0;
}

void symtab_fini(symtab_t *t)
{
    if (t->names)
        mem_free(MEM_TAG_INGEST, t->names, NAMES_N * sizeof *t->names);
    if (t->slots)
        mem_free(MEM_TAG_INGEST, t->slots, (t->slot_mask + 1) * sizeof *t->slots);
    memset(t, 0, sizeof *t);
}

void symtab_clear(symtab_t *t)
{
    memset(t->names, 0, NAMES_N * sizeof *t->names);
    memset(t->slots, 0, (t->slot_mask + 1) * sizeof *t->slots);
    t->count = 0;
    t->next_locate = 1;
}

/* The slot holding sym, or the empty slot where it would go. */
static uint32_t probe(const symtab_t *t, const char *sym, size_t len)
{
    uint32_t i = (uint32_t)XXH3_64bits(sym, len) & t->slot_mask;
    for (;;) {
        uint16_t loc = t->slots[i];
        if (loc == 0)
            return i;
        const char *name = t->names[loc];
        if (strncmp(name, sym, len) == 0 && name[len] == '\0')
            return i;
        i = (i + 1) & t->slot_mask;
    }
}

uint16_t symtab_find(const symtab_t *t, const char *sym, size_t len)
{
    len = trim(sym, len);
    if (len == 0 || len > SYMTAB_SYM_MAX)
        return 0;
    return t->slots[probe(t, sym, len)];
}

static int insert(symtab_t *t, uint32_t slot, uint16_t locate, const char *sym, size_t len)
{
    if (t->count >= t->capacity) {
        t->full++;
        return -ENOSPC;
    }
    memcpy(t->names[locate], sym, len);
    t->names[locate][len] = '\0';
    t->slots[slot] = locate;
    t->count++;
    return 0;
}

int symtab_set(symtab_t *t, uint16_t locate, const char *sym, size_t len)
{
    len = trim(sym, len);
    if (locate == 0 || len == 0 || len > SYMTAB_SYM_MAX)
        return -EINVAL;
    uint32_t slot = probe(t, sym, len);
    uint16_t have = t->slots[slot];
    if (have == locate)
        return 0; /* the same directory entry again */
    if (have != 0 || t->names[locate][0] != '\0') {
        t->conflicts++;
        return -EEXIST;
    }
    return insert(t, slot, locate, sym, len);
}

int symtab_intern(symtab_t *t, const char *sym, size_t len)
{
    len = trim(sym, len);
    if (len == 0 || len > SYMTAB_SYM_MAX)
        return -EINVAL;
    uint32_t slot = probe(t, sym, len);
    if (t->slots[slot] != 0)
        return t->slots[slot];
    if (t->count >= t->capacity) {
        t->full++;
        return -ENOSPC;
    }
    while (t->next_locate <= SYMTAB_MAX_SYMBOLS && t->names[t->next_locate][0] != '\0')
        t->next_locate++;
    if (t->next_locate > SYMTAB_MAX_SYMBOLS) {
        t->full++;
        return -ENOSPC;
    }
    uint16_t loc = (uint16_t)t->next_locate++;
    int rc = insert(t, slot, loc, sym, len);
    return rc < 0 ? rc : loc;
}
