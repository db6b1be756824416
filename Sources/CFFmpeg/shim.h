#ifndef STREAMGATE_CFFMPEG_SHIM_H
#define STREAMGATE_CFFMPEG_SHIM_H

#include <errno.h>
#include <libavformat/avformat.h>
#include <libavformat/avio.h>
#include <libavcodec/avcodec.h>
#include <libavutil/avutil.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/display.h>
#include <libavutil/error.h>
#include <libavutil/imgutils.h>
#include <libavutil/mathematics.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libavutil/samplefmt.h>
#include <libswscale/swscale.h>
#include <libswresample/swresample.h>

/* Function-like and casting macros Swift cannot import, as functions. */

static inline int CFFmpeg_AVERROR_EAGAIN(void) { return AVERROR(EAGAIN); }
static inline int CFFmpeg_AVERROR_ENOMEM(void) { return AVERROR(ENOMEM); }
static inline int CFFmpeg_AVERROR_EIO(void) { return AVERROR(EIO); }
static inline int CFFmpeg_AVERROR_EOF(void) { return AVERROR_EOF; }
static inline int CFFmpeg_AVERROR_EXIT(void) { return AVERROR_EXIT; }
static inline int CFFmpeg_AVERROR_INVALIDDATA(void) { return AVERROR_INVALIDDATA; }
static inline int CFFmpeg_AVERROR_DECODER_NOT_FOUND(void) { return AVERROR_DECODER_NOT_FOUND; }
static inline int64_t CFFmpeg_AV_NOPTS_VALUE(void) { return AV_NOPTS_VALUE; }
static inline AVRational CFFmpeg_AV_TIME_BASE_Q(void) { return AV_TIME_BASE_Q; }
static inline int CFFmpeg_AV_TIME_BASE(void) { return AV_TIME_BASE; }

/* Rounding mode combined with the pass-min-max flag; the OR of two enum values is not importable. */
static inline int64_t CFFmpeg_rescale_near_inf(int64_t a, AVRational bq, AVRational cq) {
    return av_rescale_q_rnd(a, bq, cq, (enum AVRounding)(AV_ROUND_NEAR_INF | AV_ROUND_PASS_MINMAX));
}

/* The display matrix (rotation) of a stream, or NULL; wraps the stream side-data lookup. */
static inline const int32_t *CFFmpeg_stream_display_matrix(const AVStream *st) {
    size_t size = 0;
    const uint8_t *data = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
    if (!data || size < 9 * sizeof(int32_t)) return NULL;
    return (const int32_t *)data;
}

/* Nested opens refused: playlists, manifests, concat lists and references name other files or
 * URLs, and the demuxers open them through the context's io_open. An input is data, never a
 * program, so every such open fails, whatever the demuxer. */
static inline int CFFmpeg_refuse_io_open(struct AVFormatContext *s, AVIOContext **pb, const char *url, int flags,
                                         AVDictionary **options) {
    (void)pb; (void)url; (void)flags; (void)options;
    av_log(s, AV_LOG_ERROR, "refused to open another file or URL named inside the input\n");
    return AVERROR(EPERM);
}

static inline void CFFmpeg_refuse_nested_opens(AVFormatContext *s) { s->io_open = CFFmpeg_refuse_io_open; }

/* Logging. A va_list callback cannot be written in Swift, so this trampoline formats each libav*
 * log call into a line and hands the line to a plain C-callable function installed from Swift. */
typedef void (*CFFmpeg_log_line_fn)(int level, const char *line);
static CFFmpeg_log_line_fn CFFmpeg_log_line_sink = 0;

static inline void CFFmpeg_log_trampoline(void *avcl, int level, const char *fmt, va_list vl) {
    if (level > av_log_get_level() || !CFFmpeg_log_line_sink) return;
    char line[1024];
    int print_prefix = 1;
    av_log_format_line2(avcl, level, fmt, vl, line, (int)sizeof line, &print_prefix);
    CFFmpeg_log_line_sink(level, line);
}

static inline void CFFmpeg_set_log_sink(CFFmpeg_log_line_fn sink) {
    CFFmpeg_log_line_sink = sink;
    av_log_set_callback(CFFmpeg_log_trampoline);
}

#endif
