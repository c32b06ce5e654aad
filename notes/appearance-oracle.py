# The appearance split's ceiling with a perfect localiser (docs/RESULTS.md, "Why the misses"): a small CNN
# on greyscale 32x32 crops (40x40 px, centred on the target's true position in the middle frame, from
# synth --dump-states) of the 16 appearance classes. CPU, PyTorch (Debian's python3-torch), ~2 minutes:
#   ./examples/synth --out /tmp/appx --size 112 --frames 48 --per-class 40 --splits train,val --pretrain 0 \
#     --hard 0 --format jpg --kind appearance --dump-states
#   cd /tmp/appx && /usr/bin/python3 /path/to/notes/appearance-oracle.py
import csv, numpy as np, torch, torch.nn as nn
from PIL import Image
torch.manual_seed(0); np.random.seed(0)
st={}
for r in csv.DictReader(open('states.csv')):
    if int(r['frame'])==24: st[r['path']]=(float(r['x']),float(r['y']),float(r['log_scale']))
def load(lst, aug=False):
    X=[];Y=[]
    for l in open(lst):
        p,c=l.split(); x,y,ls=st[p]
        im=np.asarray(Image.open(f'{p}/000025.jpg').convert('L'),dtype=np.float32)/255
        S=im.shape[0]; r=20
        cx,cy=x*S,y*S
        box=(cx-r,cy-r,cx+r,cy+r)
        crop=Image.fromarray((im*255).astype(np.uint8)).crop(tuple(int(round(v)) for v in box)).resize((32,32),Image.BILINEAR)
        a=np.asarray(crop,dtype=np.float32)/255; a=(a-a.mean())/(a.std()+1e-3)
        X.append(a[None]);Y.append(int(c))
    return torch.tensor(np.array(X)),torch.tensor(Y)
Xt,Yt=load('train.csv'); Xv,Yv=load('val.csv')
net=nn.Sequential(nn.Conv2d(1,32,3,padding=1),nn.ReLU(),nn.MaxPool2d(2),nn.Conv2d(32,64,3,padding=1),nn.ReLU(),nn.MaxPool2d(2),
                  nn.Conv2d(64,64,3,padding=1),nn.ReLU(),nn.AdaptiveAvgPool2d(1),nn.Flatten(),nn.Linear(64,16))
opt=torch.optim.AdamW(net.parameters(),1e-3,weight_decay=1e-4)
for ep in range(240):
    perm=torch.randperm(len(Yt))
    for i in range(0,len(Yt),64):
        idx=perm[i:i+64]; xb=Xt[idx]
        if True: xb=torch.where(torch.rand(len(idx),1,1,1)<0.5, xb, xb.flip(3))
        loss=nn.functional.cross_entropy(net(xb),Yt[idx]); opt.zero_grad(); loss.backward(); opt.step()
    if ep%60==59:
        with torch.no_grad(): acc=(net(Xv).argmax(1)==Yv).float().mean().item()
        print(ep, round(loss.item(),3), 'val acc', round(acc*100,2))
# shape-only and texture-only accuracy
with torch.no_grad(): pr=net(Xv).argmax(1)
print('shape acc', ((pr//4)==(Yv//4)).float().mean().item()*100, 'texture acc', ((pr%4)==(Yv%4)).float().mean().item()*100)
