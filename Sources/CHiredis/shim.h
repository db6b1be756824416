#ifndef STREAMGATE_CHIREDIS_SHIM_H
#define STREAMGATE_CHIREDIS_SHIM_H

#include <hiredis/hiredis.h>

/* Reply types are macros; Swift sees these instead. */
static inline int CHiredis_REPLY_STRING(void) { return REDIS_REPLY_STRING; }
static inline int CHiredis_REPLY_ARRAY(void) { return REDIS_REPLY_ARRAY; }
static inline int CHiredis_REPLY_INTEGER(void) { return REDIS_REPLY_INTEGER; }
static inline int CHiredis_REPLY_NIL(void) { return REDIS_REPLY_NIL; }
static inline int CHiredis_REPLY_STATUS(void) { return REDIS_REPLY_STATUS; }
static inline int CHiredis_REPLY_ERROR(void) { return REDIS_REPLY_ERROR; }
static inline int CHiredis_OK(void) { return REDIS_OK; }

#endif
