# StreamGate: `make run` starts the whole stack and transcodes a sample; `make test` runs every test.
# Both install what is missing first (scripts/bootstrap.sh).

export PATH := /opt/swift/usr/bin:$(PATH)
SWIFT ?= swift
PORT ?= 8080
WORKERS ?= 2
SAMPLE ?= .data/sample.mp4
PROFILE ?= profiles/default.yaml

.PHONY: bootstrap build release test run clean

bootstrap:
	@scripts/bootstrap.sh
	@scripts/python-env.sh

build: bootstrap
	$(SWIFT) build

release: bootstrap
	$(SWIFT) build -c release --product streamgate

test: bootstrap
	$(SWIFT) build --build-tests
	scripts/test.sh

# A 12 s 720p clip with motion and sound, so the sample ladder has several rungs.
.data/sample.mp4:
	@mkdir -p .data
	ffmpeg -loglevel error -y -f lavfi -i testsrc2=size=1280x720:rate=30:duration=12 \
	  -f lavfi -i sine=frequency=440:sample_rate=48000:duration=12 \
	  -c:v libx264 -preset veryfast -crf 20 -pix_fmt yuv420p -c:a aac -b:a 128k -shortest $@

# The embedded stack: redis-server, the HTTP server (playback, job API, metrics) and a farm of
# workers, all under .data/ (a development master key and an API key are generated the first
# time). The sample clip is transcoded through the queue and its playback URL printed.
run: release $(SAMPLE)
	.build/release/streamgate dev --data .data --port $(PORT) --workers $(WORKERS) --sample $(SAMPLE) --sample-profile $(notdir $(basename $(PROFILE)))

clean:
	rm -rf .build .data
