#include <stdlib.h>
#include <string.h>
#include <errno.h>

/* A bounded ring buffer of byte strings, written for a test. */
struct ring {
    size_t head, tail, len, cap;
    char **items;
};

int ring_init(struct ring *r, size_t cap)
{
    r->items = calloc(cap, sizeof(char *));
    if (r->items == NULL)
        return -ENOMEM;
    r->head = r->tail = r->len = 0;
    r->cap = cap;
    return 0;
}

int ring_push(struct ring *r, const char *s)
{
    if (r->len == r->cap)
        return -ENOSPC;
    r->items[r->tail] = strdup(s);
    if (r->items[r->tail] == NULL)
        return -ENOMEM;
    r->tail = (r->tail + 1) % r->cap;
    r->len++;
    return 0;
}

char *ring_pop(struct ring *r)
{
    char *s;
    if (r->len == 0)
        return NULL;
    s = r->items[r->head];
    r->items[r->head] = NULL;
    r->head = (r->head + 1) % r->cap;
    r->len--;
    return s;
}

void ring_free(struct ring *r)
{
    char *s;
    while ((s = ring_pop(r)) != NULL)
        free(s);
    free(r->items);
}
