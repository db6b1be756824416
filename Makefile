# StreamGate: `make run` transcodes a sample and serves it; `make test` runs every test.
# Both install what is missing first (scripts/bootstrap.sh).

export PATH := /opt/swift/usr/bin:$(PATH)
SWIFT ?= swift
PORT ?= 8080
STORE ?= .data/store
KEY_FILE ?= .data/master.key
SAMPLE ?= .data/sample.mp4
PROFILE ?= profiles/default.yaml

.PHONY: bootstrap build release test run clean

bootstrap:
	@scripts/bootstrap.sh

build: bootstrap
	$(SWIFT) build

release: bootstrap
	$(SWIFT) build -c release --product streamgate

test: bootstrap
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --parallel

# A development master key is generated once into .data/ (never commit it); production sets
# STREAMGATE_MASTER_KEY or passes --master-key-file.
$(KEY_FILE):
	@mkdir -p $(dir $(KEY_FILE))
	@umask 077 && openssl rand -base64 32 > $(KEY_FILE)
	@echo "run: generated a development master key in $(KEY_FILE)" >&2

# A 12 s 720p clip with motion and sound, so the sample ladder has several rungs.
.data/sample.mp4:
	@mkdir -p .data
	ffmpeg -loglevel error -y -f lavfi -i testsrc2=size=1280x720:rate=30:duration=12 \
	  -f lavfi -i sine=frequency=440:sample_rate=48000:duration=12 \
	  -c:v libx264 -preset veryfast -crf 20 -pix_fmt yuv420p -c:a aac -b:a 128k -shortest $@

run: release $(KEY_FILE) $(SAMPLE)
	.build/release/streamgate transcode $(SAMPLE) --profile $(PROFILE) --out $(STORE) --asset-id sample --master-key-file $(KEY_FILE)
	@echo "play: ffplay http://127.0.0.1:$(PORT)/v/sample/master.m3u8   (or open it in any HLS player)"
	.build/release/streamgate serve --store $(STORE) --port $(PORT) --master-key-file $(KEY_FILE)

clean:
	rm -rf .build .data
